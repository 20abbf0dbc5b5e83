"""Rollout-level replay: store individual past rollouts and replay those with large |advantage|.

- :class:`AdvReplayBuffer`: advantage-prioritized (sum-tree), age-bounded replay (Yoo et al., 2026).
- :class:`NaiveReplayBuffer`: the baseline, uniform and without an age bound.
- :class:`ReplayBuffer`: the composition both are made of (slot ring, removal rule, selector), for
  other combinations.
"""

from priorl.replay.buffer import AdvReplayBuffer, NaiveReplayBuffer, ReplayBuffer
from priorl.replay.removal import KeepAll, MaxAge
from priorl.replay.selectors import PrioritySelector, UniformSelector
from priorl.replay.state import RecordCodec

__all__ = [
    "AdvReplayBuffer",
    "KeepAll",
    "MaxAge",
    "NaiveReplayBuffer",
    "PrioritySelector",
    "RecordCodec",
    "ReplayBuffer",
    "UniformSelector",
]
