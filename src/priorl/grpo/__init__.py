"""GRPO: group advantages, the clipped token-level objective, and the trainer loop."""

from priorl.grpo.advantages import group_advantages
from priorl.grpo.loss import PolicyLossStats, clipped_surrogate

__all__ = ["PolicyLossStats", "clipped_surrogate", "group_advantages"]
