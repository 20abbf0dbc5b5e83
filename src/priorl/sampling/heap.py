"""An indexed max-heap over problem ids with lazy invalidation.

``heapq`` gives O(log n) push and pop in C. Removing or re-keying an id in the middle of a binary heap
is what it lacks, so the heap keeps each id's current key on the side: an entry is live only while it
equals its id's current key, and a dead entry is dropped when it reaches the top. Dead entries are rare
(an id leaves the heap mostly by being popped), and the heap is compacted when they outnumber the live
ones, so memory stays O(n) and every operation stays O(log n) amortized.

Each entry is one Python int that packs the whole key, so a heap comparison is a single integer
comparison (several times cheaper than comparing tuples at a million entries):

    key = (inverted priority bits << 104) | (tiebreak + 1 << 40) | id

A non-negative float64 orders like its IEEE bit pattern read as an integer, so inverting those bits
makes the smallest key the highest priority, exactly, with no rounding; then the smallest tiebreak,
then the smallest id.
"""

from __future__ import annotations

import heapq

import numpy as np

_ID_BITS = 40
_TIE_SHIFT = _ID_BITS
_PRIO_SHIFT = 104  # tiebreak + 1 gets 64 bits
_ID_MASK = (1 << _ID_BITS) - 1
_INV = (1 << 63) - 1


def pack_keys(ids: np.ndarray, priorities: np.ndarray, tiebreaks: np.ndarray) -> list[int]:
    """Heap keys for ``ids`` (see the module docstring). O(k).

    Priorities must be finite and >= 0; tiebreaks >= -1 (-1: never sampled).
    """
    prio = np.ascontiguousarray(priorities, dtype=np.float64) + 0.0  # + 0.0 turns -0.0 into 0.0
    inv = (_INV - prio.view(np.int64)).tolist()
    return [
        (i_ << _PRIO_SHIFT) | ((t + 1) << _TIE_SHIFT) | pid
        for i_, t, pid in zip(inv, np.asarray(tiebreaks).tolist(), np.asarray(ids).tolist(), strict=True)
    ]


class IndexedMaxHeap:
    """Max-heap of ``(priority, tiebreak)`` keys over ids ``0 .. capacity-1``.

    The highest priority pops first; among equal priorities the smallest ``tiebreak`` pops first, then the
    smallest id, so the order is fully deterministic.
    """

    def __init__(self, capacity: int) -> None:
        if capacity > _ID_MASK:
            raise ValueError(f"IndexedMaxHeap supports up to {_ID_MASK} ids, got {capacity}")
        self.capacity = int(capacity)
        self._heap: list[int] = []
        self._key: list[int | None] = [None] * self.capacity  # current key of each live id
        self._popped: list[int] = [0] * self.capacity  # key each id had when last popped (for restore)
        self._n_live = 0

    def __len__(self) -> int:
        """Number of live ids. O(1)."""
        return self._n_live

    def __contains__(self, pid: int) -> bool:
        """Whether ``pid`` is in the heap. O(1)."""
        return self._key[pid] is not None

    def push_many(self, ids: np.ndarray, priorities: np.ndarray, tiebreaks: np.ndarray) -> None:
        """Insert each id, or re-key it if present (its old entry dies). O(k log n) amortized."""
        heap, current, push = self._heap, self._key, heapq.heappush
        for key in pack_keys(ids, priorities, tiebreaks):
            pid = key & _ID_MASK
            if current[pid] is None:
                self._n_live += 1
            current[pid] = key
            push(heap, key)
        self._maybe_compact()

    def discard(self, pid: int) -> None:
        """Remove ``pid`` if present (lazily: its entry dies in place). O(1)."""
        if self._key[pid] is not None:
            self._key[pid] = None
            self._n_live -= 1

    def peek(self) -> int | None:
        """The id that :meth:`pop_many` would return first, without removing it; None if empty. O(1) amortized.

        Dead entries met at the top are dropped on the way (they would be dropped by the next pop anyway).
        """
        heap, current = self._heap, self._key
        while heap:
            key = heap[0]
            pid = key & _ID_MASK
            if current[pid] == key:
                return pid
            heapq.heappop(heap)
        return None

    def pop_many(self, n: int) -> list[int]:
        """Remove and return the ``min(n, len(self))`` best ids, best first. O(n log n) amortized."""
        heap, current, popped, pop = self._heap, self._key, self._popped, heapq.heappop
        out: list[int] = []
        append = out.append
        need = min(n, self._n_live)
        self._n_live -= need
        while need:
            key = pop(heap)
            pid = key & _ID_MASK
            if current[pid] == key:
                current[pid] = None
                popped[pid] = key
                append(pid)
                need -= 1
        return out

    def restore(self, ids) -> None:
        """Put back ids popped by :meth:`pop_many` with the key they had, unless re-added since. O(k log n).

        Cheaper than :meth:`push_many` with the same priorities and tiebreaks (no re-packing).
        """
        heap, current, popped, push = self._heap, self._key, self._popped, heapq.heappush
        for pid in ids:
            if current[pid] is None:
                key = popped[pid]
                current[pid] = key
                push(heap, key)
                self._n_live += 1

    def rebuild(self, ids: np.ndarray, priorities: np.ndarray, tiebreaks: np.ndarray) -> None:
        """Replace the whole content (used when loading state). O(n)."""
        self._key = [None] * self.capacity
        self._popped = [0] * self.capacity
        self._heap = pack_keys(ids, priorities, tiebreaks)
        for key in self._heap:
            self._key[key & _ID_MASK] = key
        self._n_live = len(self._heap)
        heapq.heapify(self._heap)

    def _maybe_compact(self) -> None:
        # Amortized: a rebuild costs O(n) and happens only after more than n dead entries accrued.
        if len(self._heap) > 2 * self._n_live + 1024:
            current = self._key
            self._heap = [k for k in self._heap if current[k & _ID_MASK] == k]
            heapq.heapify(self._heap)
