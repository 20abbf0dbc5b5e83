"""priorl: GRPO post-training that spends its generation where the gradient is.

Two standalone components that any GRPO loop can use, both speaking one small protocol
(``sample``, ``observe``, ``state_dict``, ``load_state_dict``, ``metrics``):

- :class:`PrioritizedSampler` picks *which problems* to roll out, by the reward variance
  p(1-p) of their last groups, with heap-based selection and retesting (Fatemi, 2026).
- :class:`RolloutReplayBuffer` reuses *individual past rollouts* with large |advantage| for at
  most ``tau_max`` steps next to every fresh batch (Yoo et al., 2026).

``import priorl`` stays light: numpy only. Heavy extras (torch models, TRL, verl, matplotlib)
are imported where they are used.
"""

from priorl.replay import NaiveReplayBuffer, RolloutReplayBuffer
from priorl.sampling import PassSampler, PrioritizedSampler, UniformSampler
from priorl.sumtree import SumTree
from priorl.types import Problem, Rollout

__version__ = "0.1.0"

__all__ = [
    "NaiveReplayBuffer",
    "PassSampler",
    "PrioritizedSampler",
    "Problem",
    "Rollout",
    "RolloutReplayBuffer",
    "SumTree",
    "UniformSampler",
    "__version__",
]
