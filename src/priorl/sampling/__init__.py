"""Problem-level prioritized sampling: which problems to roll out next.

- :class:`PrioritizedSampler` (``sampler.kind: prioritized``, the paper's form): priority = the last group's reward
  variance p(1-p), greedy top-B through a heap, solved and unsolved problems retested, a starvation bound (see
  :mod:`priorl.sampling.prioritized` and docs/sampler.md).
- :class:`PrioritizedPassSampler` (``prioritized-pass``): each batch selected from the next candidates of a
  shuffled pass over the data, by a decayed posterior's probability that a group is informative; nothing parked,
  no repeats within a pass.
- :class:`UniformSampler` (``uniform``): the GRPO baseline with the same interface.

What no preset or default uses (other estimators and selections, the Beta/Thompson path of the
``experimental-beta`` presets, a variance priority for the pass sampler) is in :mod:`priorl.sampling.experimental`.
"""

from priorl.sampling.prioritized import PrioritizedSampler
from priorl.sampling.prioritized_pass import PrioritizedPassSampler
from priorl.sampling.uniform import UniformSampler

__all__ = ["PrioritizedPassSampler", "PrioritizedSampler", "UniformSampler"]
