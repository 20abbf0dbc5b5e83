"""How the prioritized sampler picks among *active* problems (seen, not in a pool, not awaiting rewards).

A selector holds a set of ids with priorities and hands out the ones to sample. :class:`GreedySelector` (the
paper's form): the top-B priorities, through an indexed heap. Stochastic and Thompson selection are in
:mod:`priorl.sampling.experimental.selectors`.

A taken id leaves the selector; the sampler puts it back with its new priority once rewards arrive.
"""

from __future__ import annotations

import numpy as np

from priorl.sampling.heap import IndexedMaxHeap


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

    def peek(self) -> int | None:
        """The id :meth:`take` would return first, or None. O(1) amortized."""
        return self._heap.peek()

    def restore(self, ids: np.ndarray) -> None:
        """Put back ids taken by :meth:`take` with the priority and tiebreak they had. O(k log M)."""
        self._heap.restore(np.asarray(ids).tolist())

    def rebuild(self, ids: np.ndarray, priorities: np.ndarray, tiebreaks: np.ndarray) -> None:
        """Replace the content (loading state). O(M)."""
        self._heap.rebuild(ids, priorities, tiebreaks)

    def config(self) -> dict:
        return {"selection": self.name}
