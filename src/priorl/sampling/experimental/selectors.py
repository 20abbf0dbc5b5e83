"""Experimental selections for the prioritized sampler (no preset or default uses stochastic selection;
Thompson selection is the ``experimental-beta`` presets'). The protocol: :mod:`priorl.sampling.selectors`.

- :class:`StochasticSelector`: ``P(q) ∝ priority^alpha + floor``, through a sum-tree, as in prioritized
  experience replay; it trades some greed for diversity.
- :class:`ThompsonSelector` (with the beta estimator): the heap's top ``candidates * B``, re-ranked by
  ``p~ (1 - p~)`` with ``p~`` drawn from each candidate's posterior (MoPPS-style).
"""

from __future__ import annotations

import numpy as np

from priorl.sampling.selectors import GreedySelector
from priorl.sumtree import SumTree


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


class ThompsonSelector(GreedySelector):
    """Thompson sampling among the top candidates: MoPPS-style, at the heap's cost.

    The sampler takes the ``candidates * n`` best problems by priority (the posterior expected variance),
    draws ``p~`` from each one's Beta posterior (an unseen problem's from its level's prior), keeps the
    ``n`` with the largest ``p~ (1 - p~)`` and puts the others back unchanged. Restricting the draw to a
    shortlist keeps ``sample`` at O(candidates * B log M); a problem outside the shortlist has a lower
    expected variance than every candidate, and ``candidates = 4`` leaves each chosen slot four posteriors
    to choose from. Draws come from the sampler's seeded RNG, so a restored sampler makes the same ones.
    """

    name = "thompson"

    def __init__(self, num_problems: int, rng: np.random.Generator, candidates: int = 4) -> None:
        super().__init__(num_problems, rng)
        if isinstance(candidates, bool) or not isinstance(candidates, (int, np.integer)) or candidates < 1:
            raise ValueError(f"thompson_candidates must be an int >= 1, got {candidates!r}")
        self.candidates = int(candidates)
        self._rng = rng

    def rerank(self, a: np.ndarray, b: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the ``n`` candidates to keep (best draw first) and of the rest, given posteriors ``(a, b)``.

        Candidates come in priority order; equal draws keep that order. O(k log k).
        """
        draw = self._rng.beta(a, b)
        order = np.argsort(-(draw * (1.0 - draw)), kind="stable")
        return order[:n], order[n:]

    def config(self) -> dict:
        return {"selection": self.name, "candidates": self.candidates}


SELECTORS = {cls.name: cls for cls in (GreedySelector, StochasticSelector, ThompsonSelector)}
