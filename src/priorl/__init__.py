"""priorl: GRPO post-training that spends its generation where the gradient is.

Two standalone components that any GRPO loop can use, both speaking one small protocol
(``sample``, ``observe``, ``state_dict``, ``load_state_dict``, ``metrics``):

- :class:`AdvReplayBuffer` reuses *individual past rollouts* with large |advantage| for at most ``tau_max``
  steps next to every fresh batch (Yoo et al., 2026). With uniform problems this is priorl's default (the
  ``adv-replay`` preset): the one method that needed fewer completions than a tuned GRPO in priorl's studies.
- :class:`PrioritizedSampler` (the paper's heap form) and :class:`PrioritizedPassSampler` pick *which problems* to roll
  out by their success statistics, p(1-p) (Fatemi, 2026); tuned, neither has beaten uniform GRPO so far
  (benchmarks/RESULTS.md). :class:`UniformSampler` is the baseline.

``import priorl`` stays light: numpy only. Heavy extras (torch models, TRL, verl, matplotlib)
are imported where they are used.
"""

from priorl.replay import AdvReplayBuffer, NaiveReplayBuffer
from priorl.sampling import PrioritizedPassSampler, PrioritizedSampler, UniformSampler
from priorl.sumtree import SumTree
from priorl.types import Problem, Rollout

__version__ = "0.1.0"

__all__ = [
    "AdvReplayBuffer",
    "NaiveReplayBuffer",
    "PrioritizedPassSampler",
    "PrioritizedSampler",
    "Problem",
    "Rollout",
    "SumTree",
    "UniformSampler",
    "__version__",
]
