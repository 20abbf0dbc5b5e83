"""Birth-ordered storage of rollouts: a ring of slots, oldest at ``head``.

Rollouts arrive in non-decreasing birth step, so the ring is sorted by step from its oldest end.
That makes both removal rules cheap: capacity drops the oldest ``m`` slots (a slice), and age
eviction finds how many slots are too old by binary search over the (at most two) sorted segments
of the ring, then drops them as one slice. Each rollout is evicted once, so eviction is amortized
O(1) per rollout, and nothing here ever walks all stored rollouts per step.
"""

from __future__ import annotations

import numpy as np

from priorl.types import Rollout

__all__ = ["SlotRing"]


class SlotRing:
    """Fixed-capacity ring of rollout slots with per-slot ``step`` and ``advantage`` arrays.

    Logical position ``i`` (0 = oldest) lives in physical slot ``(head + i) % capacity``; the slot
    number is also the rollout's sum-tree leaf.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        self.slots: list[Rollout | None] = [None] * self.capacity
        self.step = np.zeros(self.capacity, dtype=np.int64)
        self.advantage = np.zeros(self.capacity, dtype=np.float64)
        self.head = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def physical(self, logical: np.ndarray) -> np.ndarray:
        """Physical slots of logical positions (0 = oldest). O(k)."""
        return (self.head + np.asarray(logical, dtype=np.int64)) % self.capacity

    def occupied(self) -> np.ndarray:
        """Physical slots of all stored rollouts, oldest first. O(n): for state and tests only."""
        return self.physical(np.arange(self.size))

    def count_born_before(self, cutoff: int) -> int:
        """Number of stored rollouts whose step is < ``cutoff``. O(log n).

        The ring is sorted by step in logical order, and in physical order it is two sorted segments:
        ``[head, capacity)`` and ``[0, head + size - capacity)`` when it wraps.
        """
        end = self.head + self.size
        first = self.step[self.head : min(end, self.capacity)]
        count = int(np.searchsorted(first, cutoff, side="left"))
        if count == first.size and end > self.capacity:
            count += int(np.searchsorted(self.step[: end - self.capacity], cutoff, side="left"))
        return count

    def drop_oldest(self, count: int) -> np.ndarray:
        """Remove the ``count`` oldest rollouts; return their physical slots. O(count)."""
        count = min(int(count), self.size)
        if count == 0:
            return np.zeros(0, dtype=np.int64)
        freed = self.physical(np.arange(count))
        self._clear(self.head, count)
        self.head = (self.head + count) % self.capacity
        self.size -= count
        return freed

    def push(self, rollouts: list[Rollout]) -> tuple[np.ndarray, np.ndarray]:
        """Append rollouts (already in birth order) at the newest end. O(m).

        When the ring is full the oldest rollouts make room (the capacity backstop); if ``m`` exceeds
        the capacity only the newest ``capacity`` of the batch are kept. Returns ``(written, dropped)``:
        the physical slots now holding the kept rollouts (in batch order), and the number of
        rollouts dropped for capacity (stored ones plus any of the batch itself that did not fit).
        """
        m = len(rollouts)
        dropped_batch = max(0, m - self.capacity)
        if dropped_batch:
            rollouts = rollouts[dropped_batch:]
            m = self.capacity
        overflow = max(0, self.size + m - self.capacity)
        self.drop_oldest(overflow)
        written = self.physical(np.arange(self.size, self.size + m))
        # Write in at most two contiguous runs so the Python-level work is list slicing, not a loop.
        start = int(written[0]) if m else 0
        first = min(m, self.capacity - start)
        self.slots[start : start + first] = rollouts[:first]
        self.slots[: m - first] = rollouts[first:]
        self.step[written] = [r.step for r in rollouts]
        self.advantage[written] = [r.advantage for r in rollouts]
        self.size += m
        return written, overflow + dropped_batch

    def _clear(self, start: int, count: int) -> None:
        # Release the Python objects (so evicted rollouts can be garbage-collected) in two slices.
        first = min(count, self.capacity - start)
        self.slots[start : start + first] = [None] * first
        self.slots[: count - first] = [None] * (count - first)
