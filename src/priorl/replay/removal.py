"""When a stored rollout leaves the buffer for age (the Reverb "remover"); capacity is the ring's backstop."""

from __future__ import annotations

from typing import Protocol

from priorl.replay.ring import SlotRing

__all__ = ["KeepAll", "MaxAge", "RemovalRule"]


class RemovalRule(Protocol):
    """How many of the oldest stored rollouts have expired at ``step``."""

    def expired(self, ring: SlotRing, step: int) -> int: ...


class MaxAge:
    """A rollout expires once ``step - rollout.step > tau_max``.

    tau_max = 0 replays only rollouts born at the current step.
    """

    def __init__(self, tau_max: int) -> None:
        self.tau_max = int(tau_max)

    def expired(self, ring: SlotRing, step: int) -> int:
        """Count of the oldest rollouts born before ``step - tau_max``. O(log n) (binary search)."""
        return ring.count_born_before(step - self.tau_max)

    def __repr__(self) -> str:
        return f"MaxAge(tau_max={self.tau_max})"


class KeepAll:
    """No age bound (naive replay): rollouts leave only when capacity pushes them out."""

    tau_max = None

    def expired(self, ring: SlotRing, step: int) -> int:
        """Always 0. O(1)."""
        return 0

    def __repr__(self) -> str:
        return "KeepAll()"
