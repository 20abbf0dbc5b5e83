"""Problem-level prioritized sampling: which problems to roll out next.

- :class:`PrioritizedSampler`: priority = reward variance p(1-p) (or, with ``estimator="beta"``, its
  posterior expectation under a per-level empirical-Bayes prior), heap or Thompson selection, retesting,
  a starvation bound (see :mod:`priorl.sampling.prioritized` and docs/sampler.md).
- :class:`PassSampler`: each batch selected from the next candidates of a shuffled pass over the data, by a
  decayed posterior's probability that a group is informative; nothing parked, no repeats within a pass.
- :class:`UniformSampler`: the GRPO baseline with the same interface.
"""

from priorl.sampling.pass_sampler import PassSampler
from priorl.sampling.prioritized import PrioritizedSampler
from priorl.sampling.uniform import UniformSampler

__all__ = ["PassSampler", "PrioritizedSampler", "UniformSampler"]
