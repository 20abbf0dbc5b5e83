"""Least-recently-sampled order over problem ids: a doubly linked list kept in two flat integer arrays.

The retest schedule walks this list from its oldest end. Because every sampled id moves to the newest
end, an id with ``j`` ids ahead of it is reached after at most ``j + 1`` retest slots, whatever the
priorities do: that is the starvation bound. Moving an id and reading the oldest one are O(1).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator

import numpy as np

_NIL = -1


class RecencyList:
    """Ids ordered from least to most recently touched; only touched ids are in the list."""

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        # array / bytearray rather than numpy: per-element access from Python is several times faster.
        self._prev = array("q", [_NIL]) * self.capacity
        self._next = array("q", [_NIL]) * self.capacity
        self._member = bytearray(self.capacity)
        self._head = _NIL  # oldest
        self._tail = _NIL  # newest
        self._size = 0

    def __len__(self) -> int:
        """Number of ids in the list. O(1)."""
        return self._size

    def __contains__(self, pid: int) -> bool:
        """Whether ``pid`` has been touched. O(1)."""
        return bool(self._member[pid])

    def touch(self, pid: int) -> None:
        """Move ``pid`` to the newest end (appending it if absent). O(1)."""
        self.touch_many((int(pid),))

    def touch_many(self, ids) -> None:
        """:meth:`touch` each id in order. O(k). (The loop body repeats :meth:`touch`, inlined for speed.)"""
        prev, nxt, member = self._prev, self._next, self._member
        head, tail, size = self._head, self._tail, self._size
        for pid in ids:
            if member[pid]:
                if pid == tail:
                    continue
                p, n = prev[pid], nxt[pid]
                if p == _NIL:
                    head = n
                else:
                    nxt[p] = n
                prev[n] = p
            else:
                member[pid] = 1
                size += 1
            prev[pid] = tail
            nxt[pid] = _NIL
            if tail == _NIL:
                head = pid
            else:
                nxt[tail] = pid
            tail = pid
        self._head, self._tail, self._size = head, tail, size

    def oldest(self) -> Iterator[int]:
        """Iterate ids from least to most recently touched. O(1) per id yielded.

        Do not touch ids while iterating; collect them first.
        """
        node, nxt = self._head, self._next
        while node != _NIL:
            yield node
            node = nxt[node]

    def oldest_n(self, n: int, exclude=()) -> list[int]:
        """Up to ``n`` least recently touched ids not in ``exclude``, oldest first. O(n + len(exclude))."""
        out: list[int] = []
        if n <= 0:
            return out
        for pid in self.oldest():
            if pid not in exclude:
                out.append(pid)
                if len(out) == n:
                    break
        return out

    def order(self) -> np.ndarray:
        """All ids, oldest first (for state snapshots). O(n)."""
        return np.fromiter(self.oldest(), dtype=np.int64, count=self._size)

    def load_order(self, order: np.ndarray) -> None:
        """Rebuild the list from ids given oldest first. O(n)."""
        order = np.asarray(order, dtype=np.int64)
        if order.size and (order.min() < 0 or order.max() >= self.capacity or np.unique(order).size != order.size):
            raise ValueError("recency order must hold distinct ids in range")
        prev = np.full(self.capacity, _NIL, dtype=np.int64)
        nxt = np.full(self.capacity, _NIL, dtype=np.int64)
        member = np.zeros(self.capacity, dtype=np.uint8)
        self._size = int(order.size)
        self._head = self._tail = _NIL
        if order.size:
            member[order] = 1
            nxt[order[:-1]] = order[1:]
            prev[order[1:]] = order[:-1]
            self._head, self._tail = int(order[0]), int(order[-1])
        self._prev, self._next = array("q", prev.tobytes()), array("q", nxt.tobytes())
        self._member = bytearray(member.tobytes())
