"""How a replay buffer picks which stored rollouts to replay (the Reverb "selector").

A selector sees slots (the ring's physical indices) being filled and freed, and draws distinct
occupied slots. It holds no rollouts itself; the ring does.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from priorl.replay.ring import SlotRing
from priorl.sumtree import SumTree

__all__ = ["PrioritySelector", "Selector", "UniformSelector"]


class Selector(Protocol):
    """What a replay buffer needs from a selector."""

    name: str

    def fill(self, slots: np.ndarray, advantages: np.ndarray) -> None:
        """Slots now hold rollouts with these advantages."""

    def free(self, slots: np.ndarray) -> None:
        """Slots no longer hold a rollout."""

    def select(self, k: int, ring: SlotRing, rng: np.random.Generator) -> np.ndarray:
        """Up to ``k`` distinct occupied slots, in draw order."""

    def rebuild(self, ring: SlotRing) -> None:
        """Recompute all internal state from the ring (after loading a checkpoint)."""


class PrioritySelector:
    """P(slot) ∝ (|advantage| + eps) ** priority_exponent over occupied slots, kept in a sum-tree.

    Free slots have weight 0, so they are never drawn. priority_exponent = 0 is uniform over stored rollouts.
    """

    name = "priority"

    def __init__(self, capacity: int, *, priority_exponent: float, eps: float) -> None:
        self.priority_exponent = float(priority_exponent)
        self.eps = float(eps)
        self.tree = SumTree(capacity)

    def priority(self, advantages: np.ndarray) -> np.ndarray:
        """Sampling weight of each advantage. O(k)."""
        return (np.abs(np.asarray(advantages, dtype=np.float64)) + self.eps) ** self.priority_exponent

    def fill(self, slots: np.ndarray, advantages: np.ndarray) -> None:
        """Set the weights of newly written slots. O(k log n)."""
        self.tree.update(slots, self.priority(advantages))

    def free(self, slots: np.ndarray) -> None:
        """Zero the weights of freed slots, in one vectorized update. O(k log n)."""
        self.tree.update(slots, 0.0)

    def select(self, k: int, ring: SlotRing, rng: np.random.Generator) -> np.ndarray:
        """Up to ``k`` distinct slots, each successive one ∝ weight among those not yet drawn.

        O(k log n) expected (:meth:`priorl.sumtree.SumTree.draw`). Ties break by the RNG alone, so a
        seeded buffer draws the same slots every run.
        """
        return self.tree.draw(min(int(k), ring.size), rng)

    def rebuild(self, ring: SlotRing) -> None:
        """Recompute every leaf from the ring's advantages. O(n)."""
        weights = np.zeros(ring.capacity, dtype=np.float64)
        slots = ring.occupied()
        weights[slots] = self.priority(ring.advantage[slots])
        self.tree.set_all(weights)


class UniformSelector:
    """Every stored rollout equally likely (naive replay): no priorities to maintain.

    The occupied slots are one contiguous logical range of the ring, so a uniform draw of distinct
    logical positions maps straight to slots.
    """

    name = "uniform"

    def fill(self, slots: np.ndarray, advantages: np.ndarray) -> None:
        """Nothing to record. O(1)."""

    def free(self, slots: np.ndarray) -> None:
        """Nothing to record. O(1)."""

    def select(self, k: int, ring: SlotRing, rng: np.random.Generator) -> np.ndarray:
        """Up to ``k`` distinct occupied slots, uniformly. O(k) expected for k << n (numpy's choice)."""
        k = min(int(k), ring.size)
        if k == 0:
            return np.zeros(0, dtype=np.int64)
        return ring.physical(rng.choice(ring.size, size=k, replace=False))

    def rebuild(self, ring: SlotRing) -> None:
        """Nothing to recompute. O(1)."""
