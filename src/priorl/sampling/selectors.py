"""How the prioritized sampler picks among *active* problems (seen, not in a pool, not awaiting rewards).

A selector holds a set of ids with priorities and hands out the ones to sample. Two choices:

- :class:`GreedySelector` (the paper's form, the default): the top-B priorities, through an indexed heap.
- :class:`StochasticSelector`: ``P(q) ∝ priority^alpha + floor``, through a sum-tree, as in prioritized
  experience replay; it trades some greed for diversity.

A taken id leaves the selector; the sampler puts it back with its new priority once rewards arrive.
"""

from __future__ import annotations

import numpy as np

from priorl.sampling.heap import IndexedMaxHeap
from priorl.sumtree import SumTree


class GreedySelector:
    """Highest priority first; ties go to the least recently sampled problem, then the lowest id."""

    name = "greedy"

    def __init__(self, num_problems: int, rng: np.random.Generator) -> None:
        self._heap = IndexedMaxHeap(num_problems)

    def __len__(self) -> int:
        return len(self._heap)

    def __contains__(self, pid: int) -> bool:
        return pid in self._heap

    def put(self, ids: np.ndarray, priorities: np.ndarray, tiebreaks: np.ndarray) -> None:
        """Insert or re-key each id. O(k log M) amortized."""
        self._heap.push_many(ids, priorities, tiebreaks)

    def discard(self, ids: np.ndarray) -> None:
        """Remove each id that is present. O(k)."""
        discard = self._heap.discard
        for pid in ids.tolist():
            discard(pid)

    def take(self, n: int) -> list[int]:
        """Remove and return up to ``n`` ids, best first. O(n log M) amortized."""
        return self._heap.pop_many(n)

    def rebuild(self, ids: np.ndarray, priorities: np.ndarray, tiebreaks: np.ndarray) -> None:
        """Replace the content (loading state). O(M)."""
        self._heap.rebuild(ids, priorities, tiebreaks)

    def config(self) -> dict:
        return {"selection": self.name}


class StochasticSelector:
    """Draw without replacement with ``P(q) ∝ priority^alpha + floor``.

    ``floor > 0`` keeps every active problem drawable; ``alpha = 0`` is uniform over active problems.
    """

    name = "stochastic"

    def __init__(self, num_problems: int, rng: np.random.Generator, alpha: float = 1.0, floor: float = 0.01):
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        if floor < 0:
            raise ValueError(f"floor must be >= 0, got {floor}")
        self.alpha, self.floor = float(alpha), float(floor)
        self._rng = rng
        self._tree = SumTree(num_problems)
        self._member = np.zeros(num_problems, dtype=bool)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def __contains__(self, pid: int) -> bool:
        return bool(self._member[pid])

    def _weight(self, priority: np.ndarray | float) -> np.ndarray | float:
        w = np.power(priority, self.alpha) + self.floor
        # A problem must stay drawable while it is a member, even with floor 0 and priority 0.
        return np.maximum(w, 1e-12)

    def put(self, ids: np.ndarray, priorities: np.ndarray, tiebreaks: np.ndarray) -> None:
        """Insert or re-weight each id (distinct). O(k log M), vectorized."""
        self._n += int(np.count_nonzero(~self._member[ids]))
        self._member[ids] = True
        self._tree.update(ids, self._weight(priorities))

    def discard(self, ids: np.ndarray) -> None:
        """Remove each id that is present (distinct). O(k log M), vectorized."""
        present = ids[self._member[ids]]
        self._member[present] = False
        self._n -= int(present.size)
        self._tree.update(present, 0.0)

    def take(self, n: int) -> list[int]:
        """Draw and remove up to ``n`` ids. O(n log M) expected."""
        ids = self._tree.pop(min(n, self._n), self._rng)
        self._member[ids] = False
        self._n -= int(ids.size)
        return ids.tolist()

    def rebuild(self, ids: np.ndarray, priorities: np.ndarray, tiebreaks: np.ndarray) -> None:
        """Replace the content (loading state). O(M)."""
        ids = np.asarray(ids, dtype=np.int64)
        w = np.zeros(self._tree.capacity)
        w[ids] = self._weight(np.asarray(priorities, dtype=np.float64))
        self._tree.set_all(w)
        self._member[:] = False
        self._member[ids] = True
        self._n = int(ids.size)

    def config(self) -> dict:
        return {"selection": self.name, "alpha": self.alpha, "floor": self.floor}


SELECTORS = {cls.name: cls for cls in (GreedySelector, StochasticSelector)}
