"""What no preset or default uses, kept for experiments: importable, tested, documented, not on the main path.

- :class:`ExperimentalPrioritizedSampler` (``sampler.kind: experimental-prioritized``): the heap sampler with the
  moving-average, window or Beta-posterior estimator (per-level empirical-Bayes priors) and stochastic or Thompson
  selection; the ``experimental-beta`` presets use its Beta/Thompson form.
- :class:`VariancePassSampler`: the pass sampler with a variance priority.

Each was measured and did not beat what the presets use (benchmarks/RESULTS.md; docs/sampler.md). Something here
that a study shows pays moves back to :mod:`priorl.sampling` with a preset.
"""

from priorl.sampling.experimental.prioritized import ExperimentalPrioritizedOptions, ExperimentalPrioritizedSampler
from priorl.sampling.experimental.variance_pass import VariancePassSampler

__all__ = ["ExperimentalPrioritizedOptions", "ExperimentalPrioritizedSampler", "VariancePassSampler"]
