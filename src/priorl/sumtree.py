"""A sum-tree over a fixed number of non-negative weights, with vectorized updates and draws.

Both methods draw items with probability proportional to a weight that changes as training goes:
the problem sampler's stochastic mode (P ∝ priority^alpha + floor) and the rollout replay buffer
(P ∝ (|A| + eps)^alpha). A sum-tree stores the weights in the leaves of a complete binary tree whose
inner nodes hold the sums of their children, so one weight update and one draw each cost
O(log n) instead of the O(n) of a cumulative sum over all weights.

Layout: ``tree[1]`` is the root, node ``i`` has children ``2i`` and ``2i + 1``, and leaf ``j`` lives at
``tree[size + j]`` where ``size`` is the capacity rounded up to a power of two. Inner nodes are always
recomputed from their children (never incremented), so no floating-point drift accumulates.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SumTree"]


class SumTree:
    """Sum-tree over ``capacity`` non-negative float64 weights, all zero at first.

    Every method works on whole arrays of leaves at once: the per-level work is one numpy operation,
    so updating or drawing ``k`` leaves costs O(k log n) element operations in O(log n) numpy calls.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"SumTree capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self._size = 1 << max(0, (self.capacity - 1).bit_length())
        self._depth = self._size.bit_length() - 1
        self._tree = np.zeros(2 * self._size, dtype=np.float64)

    # ------------------------------------------------------------------ reading
    @property
    def total(self) -> float:
        """Sum of all weights. O(1)."""
        return float(self._tree[1])

    def get(self, leaves: np.ndarray | int) -> np.ndarray | float:
        """Weights of the given leaves. O(k)."""
        if np.isscalar(leaves):
            return float(self._tree[self._size + int(leaves)])
        return self._tree[self._size + np.asarray(leaves, dtype=np.int64)].copy()

    def weights(self) -> np.ndarray:
        """A copy of all ``capacity`` leaf weights. O(n): for state snapshots and tests, not the hot path."""
        return self._tree[self._size : self._size + self.capacity].copy()

    # ------------------------------------------------------------------ writing
    def update(self, leaves: np.ndarray | list[int] | int, values: np.ndarray | list[float] | float) -> None:
        """Set the weights of ``leaves`` to ``values`` (broadcast). O(k log n).

        A leaf that appears more than once takes its last value.
        """
        idx = np.atleast_1d(np.asarray(leaves, dtype=np.int64))
        if idx.size == 0:
            return
        vals = np.broadcast_to(np.asarray(values, dtype=np.float64), idx.shape)
        if idx.min() < 0 or idx.max() >= self.capacity:
            bad = idx[(idx < 0) | (idx >= self.capacity)][0]
            raise ValueError(f"SumTree leaf {int(bad)} out of range [0, {self.capacity})")
        if not np.all(np.isfinite(vals)) or np.any(vals < 0):
            bad = vals[~np.isfinite(vals) | (vals < 0)][0]
            raise ValueError(f"SumTree weights must be finite and >= 0, got {float(bad)}")
        nodes = idx + self._size
        self._tree[nodes] = vals
        # Walk up one level at a time, recomputing each touched parent from its two children.
        # Sorted once here, the nodes stay sorted under >> 1, so dropping repeats is one comparison
        # per level (np.unique per level re-sorts or hashes: ~10x slower for a few hundred nodes).
        nodes = np.sort(nodes)
        for _ in range(self._depth):
            nodes = nodes >> 1
            keep = np.empty(nodes.size, dtype=bool)
            keep[0] = True
            np.not_equal(nodes[1:], nodes[:-1], out=keep[1:])
            nodes = nodes[keep]
            self._tree[nodes] = self._tree[2 * nodes] + self._tree[2 * nodes + 1]

    def set_all(self, values: np.ndarray) -> None:
        """Replace every leaf weight at once (e.g. when loading state). O(n)."""
        vals = np.asarray(values, dtype=np.float64)
        if vals.shape != (self.capacity,):
            raise ValueError(f"SumTree.set_all expects shape ({self.capacity},), got {vals.shape}")
        if not np.all(np.isfinite(vals)) or np.any(vals < 0):
            raise ValueError("SumTree weights must be finite and >= 0")
        self._tree[:] = 0.0
        self._tree[self._size : self._size + self.capacity] = vals
        for level in range(self._depth - 1, -1, -1):
            lo, hi = 1 << level, 1 << (level + 1)
            self._tree[lo:hi] = self._tree[2 * lo : 2 * hi : 2] + self._tree[2 * lo + 1 : 2 * hi : 2]

    # ------------------------------------------------------------------ drawing
    def find(self, targets: np.ndarray) -> np.ndarray:
        """Leaves whose cumulative-weight interval contains each target in ``[0, total)``. O(k log n).

        All targets descend the tree together, one numpy step per level.
        """
        u = np.asarray(targets, dtype=np.float64).copy()
        nodes = np.ones(u.shape, dtype=np.int64)
        for _ in range(self._depth):
            left = 2 * nodes
            left_sum = self._tree[left]
            go_right = u >= left_sum
            u = np.where(go_right, u - left_sum, u)
            nodes = np.where(go_right, left + 1, left)
        return nodes - self._size

    def draw(self, k: int, rng: np.random.Generator) -> np.ndarray:
        """Draw up to ``k`` distinct leaves, each successive draw ∝ the weights of those not yet drawn.

        This is sequential sampling without replacement, done in vectorized rounds. Drawing i.i.d.
        and skipping leaves already drawn gives exactly that distribution (rejecting a repeat is the
        same as renormalizing over the rest). With ``k`` much smaller than the number of weighted
        leaves, repeats are rare, so the rounds cost one descent each and no weight updates. When a
        round wastes more than half its draws (a few leaves hold most of the weight), the leaves
        drawn so far are zeroed and the rounds continue over the rest, which is exact too. Weights
        are restored before returning (drawing removes nothing). Returns fewer than ``k`` leaves only
        when fewer have positive weight. O(k log n) expected.
        """
        if k < 0:
            raise ValueError(f"cannot draw a negative number of items: {k}")
        chosen = np.zeros(0, dtype=np.int64)
        zeroed = np.zeros(0, dtype=np.int64)  # leaves whose weights are set aside in `saved`
        saved = np.zeros(0)
        while chosen.size < k and self._tree[1] > 0.0:
            need = k - chosen.size
            total = self._tree[1]
            # Guard the right edge: a target must stay strictly below the total after rounding.
            leaves = self.find(np.minimum(rng.random(need) * total, np.nextafter(total, 0.0)))
            # A zero-weight leaf can only be hit through rounding at a boundary; skip it.
            leaves = leaves[(leaves < self.capacity)]
            leaves = leaves[self._tree[self._size + leaves] > 0.0]
            _, first = np.unique(leaves, return_index=True)
            new = leaves[np.sort(first)]  # first occurrences, in draw order
            if chosen.size:
                new = new[~np.isin(new, chosen)]
            chosen = np.concatenate([chosen, new])
            if new.size < need / 2:
                # Mostly repeats: take the drawn leaves out of the tree so later rounds cannot hit them.
                fresh = chosen[~np.isin(chosen, zeroed)] if zeroed.size else chosen
                zeroed = np.concatenate([zeroed, fresh])
                saved = np.concatenate([saved, self._tree[self._size + fresh]])
                self.update(fresh, 0.0)
        if zeroed.size:
            self.update(zeroed, saved)
        return chosen[:k]

    def pop(self, k: int, rng: np.random.Generator) -> np.ndarray:
        """Like :meth:`draw`, but the drawn leaves keep weight zero afterwards. O(k log n) expected."""
        out = self.draw(k, rng)
        self.update(out, 0.0)
        return out
