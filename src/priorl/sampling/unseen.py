"""Problems never sampled nor observed: one queue per level, each in a seeded random order.

Every problem has a *rank*, its position in one seeded random permutation of all problems; the queue
of a level holds its problems in rank order. An unseen problem has the priority of its level (for the
beta estimator: the prior's expected reward variance), so the best unseen problem is the head of a
level with the highest priority, ties going to the lowest rank. With a single level, or with every
level at the same priority, problems come out in the permutation's order.

Levels are kept in two indexed heaps: levels with a priority of their own, keyed by
``(priority, head rank)``, and levels that all share one priority (``shared_priority``, e.g. a pooled
prior that changes at every observation), keyed by head rank alone. Picking the best head is then
O(log L) for L levels, whatever the shared priority does.

A problem leaves its queue when it is sampled or observed (:meth:`remove`, lazily: it is skipped when
it reaches the head), so every operation is O(log L) amortized plus O(1) per problem skipped.
"""

from __future__ import annotations

import numpy as np

from priorl.sampling.heap import IndexedMaxHeap


class UnseenQueues:
    """Per-level queues of unseen problems over a seeded permutation ``order`` of ``0 .. M-1``.

    Args:
        order: a permutation of the problem ids; a problem's rank is its position in it.
        levels: level code ``0 .. num_levels-1`` of each problem.
        num_levels: L.
    """

    def __init__(self, order: np.ndarray, levels: np.ndarray, num_levels: int) -> None:
        self.num_problems = M = int(order.size)
        self.num_levels = L = int(num_levels)
        self.order = np.asarray(order, dtype=np.int64)
        self._rank = np.empty(M, dtype=np.int64)
        self._rank[self.order] = np.arange(M)
        self._levels = np.asarray(levels, dtype=np.int64)
        # Problems grouped by level, in rank order within each level (a stable sort keeps the rank order).
        self._members = self.order[np.argsort(self._levels[self.order], kind="stable")]
        self._slot = np.empty(M, dtype=np.int64)  # position of each problem in _members
        self._slot[self._members] = np.arange(M)
        counts = np.bincount(self._levels, minlength=L)
        self._end = np.cumsum(counts)
        self._start = self._end - counts
        self._pos = self._start.copy()  # head pointer per level (entries before it are all gone)
        self._gone = np.zeros(M, dtype=bool)
        self._remaining = M
        self._own = np.zeros(L, dtype=bool)  # level has a priority of its own
        self._prio = np.zeros(L)
        self.shared_priority = 0.0
        self._keyed_head = np.full(L, -1, dtype=np.int64)  # the head each level's heap key was made from
        self._own_heap = IndexedMaxHeap(L)
        self._shared_heap = IndexedMaxHeap(L)
        self.rebuild()

    def __len__(self) -> int:
        """Unseen problems left. O(1)."""
        return self._remaining

    # ------------------------------------------------------------------ priorities
    def set_priorities(self, levels: np.ndarray, own: np.ndarray, priorities: np.ndarray) -> None:
        """Give distinct ``levels`` their own priority (where ``own``) or the shared one. O(k log L)."""
        levels = np.asarray(levels, dtype=np.int64)
        self._own[levels] = own
        self._prio[levels] = np.where(own, priorities, 0.0)
        for lv in levels.tolist():
            self._rekey(lv)

    # ------------------------------------------------------------------ reading and taking
    def peek(self) -> tuple[float, int] | None:
        """``(priority, id)`` of the best unseen problem, or None. O(log L) amortized."""
        best = None
        for heap, own in ((self._own_heap, True), (self._shared_heap, False)):
            lv = self._valid_top(heap)
            if lv is None:
                continue
            pid = int(self._keyed_head[lv])
            prio = float(self._prio[lv]) if own else self.shared_priority
            if best is None or prio > best[0] or (prio == best[0] and self._rank[pid] < self._rank[best[1]]):
                best = (prio, pid)
        return best

    def pop(self) -> int:
        """Remove and return the best unseen problem (there must be one). O(log L) amortized."""
        best = self.peek()
        if best is None:
            raise IndexError("no unseen problem left")
        pid = best[1]
        self.remove(np.array([pid]))
        self._rekey(int(self._levels[pid]))
        return pid

    def take(self, n: int) -> list[int]:
        """Remove and return up to ``n`` best unseen problems, best first. O(n log L) amortized."""
        if self.num_levels == 1:  # one queue: its next entries, vectorized
            return self._take_in_order(n)
        out: list[int] = []
        while len(out) < n and self._remaining:
            out.append(self.pop())
        return out

    def remove(self, ids: np.ndarray) -> None:
        """Mark problems as no longer unseen (sampled or observed). O(k); heads are fixed lazily."""
        ids = np.asarray(ids, dtype=np.int64)
        fresh = np.unique(ids[~self._gone[ids]])
        self._gone[fresh] = True
        self._remaining -= int(fresh.size)

    def unpop(self, ids: np.ndarray) -> None:
        """Put back problems taken by :meth:`pop` since the last change of their level. O(k log L)."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size == 0:
            return
        back = ids[self._gone[ids]]
        self._gone[back] = False
        self._remaining += int(back.size)
        levels = self._levels[back]
        np.minimum.at(self._pos, levels, self._slot[back])
        for lv in np.unique(levels).tolist():
            self._rekey(lv)

    # ------------------------------------------------------------------ internals
    def _head(self, lv: int) -> int:
        """First problem of level ``lv`` not gone, or -1; advances the head pointer past gone ones."""
        pos, end, members, gone = int(self._pos[lv]), int(self._end[lv]), self._members, self._gone
        step = 8  # look ahead in growing chunks: O(1) numpy calls per doubling of the skipped run
        while pos < end:
            chunk = gone[members[pos : min(end, pos + step)]]
            if not chunk.all():
                pos += int(np.argmin(chunk))  # the first one not gone
                break
            pos += chunk.size
            step = min(2 * step, 1 << 16)
        self._pos[lv] = pos
        return int(members[pos]) if pos < end else -1

    def _rekey(self, lv: int) -> None:
        head = self._head(lv)
        self._keyed_head[lv] = head
        self._own_heap.discard(lv)
        self._shared_heap.discard(lv)
        if head < 0:
            return
        heap = self._own_heap if self._own[lv] else self._shared_heap
        prio = self._prio[lv] if self._own[lv] else 0.0
        heap.push_many(np.array([lv]), np.array([prio]), np.array([self._rank[head]]))

    def _valid_top(self, heap: IndexedMaxHeap) -> int | None:
        # A level's key goes stale only when its keyed head is removed, which makes the key better than
        # the truth (a lower rank than the real head's): so fixing the top until it holds is enough.
        while True:
            lv = heap.peek()
            if lv is None or not self._gone[self._keyed_head[lv]]:
                return lv
            self._rekey(lv)

    def _take_in_order(self, n: int) -> list[int]:
        out: list[int] = []
        pos, end = int(self._pos[0]), int(self._end[0])
        while len(out) < n and pos < end:
            chunk = self._members[pos : pos + (n - len(out))]
            pos += chunk.size
            out += chunk[~self._gone[chunk]].tolist()
        self._pos[0] = pos
        self.remove(np.asarray(out, dtype=np.int64))
        self._rekey(0)
        return out

    def rebuild(self) -> None:
        """Re-key every level (construction and loading state). O(L log L)."""
        self._own_heap = IndexedMaxHeap(self.num_levels)
        self._shared_heap = IndexedMaxHeap(self.num_levels)
        for lv in range(self.num_levels):
            self._rekey(lv)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return {"order": self.order.copy(), "pos": self._pos.copy(), "gone": self._gone.copy()}

    def load_state_dict(self, state: dict) -> None:
        """Restore order, head pointers and removals; level priorities are set again by the owner."""
        M, L = self.num_problems, self.num_levels
        order = np.asarray(state["order"], dtype=np.int64)
        pos = np.atleast_1d(np.asarray(state["pos"], dtype=np.int64))
        gone = np.asarray(state["gone"], dtype=bool)
        if order.shape != (M,) or np.unique(order).size != M or (M and (order.min() < 0 or order.max() >= M)):
            raise ValueError(f"unseen-queue state: 'order' must be a permutation of {M} problem ids")
        if pos.shape != (L,) or gone.shape != (M,):
            raise ValueError(
                f"unseen-queue state: expected {L} head positions and {M} flags, got {pos.shape}, {gone.shape}"
            )
        self.__init__(order, self._levels, L)
        if ((pos < self._start) | (pos > self._end)).any():
            raise ValueError("unseen-queue state: a head position lies outside its level's queue")
        self._pos = pos.copy()
        self._gone = gone.copy()
        self._remaining = int(M - np.count_nonzero(gone))
        self.rebuild()
