"""Estimators of a problem's success statistics, from which its priority follows.

Each group of rollout rewards is summarized by its first two moments, ``m1 = mean(r)`` and
``m2 = mean(r^2)``. An estimator combines a problem's groups into estimates of both moments; the
priority is the reward variance they imply, ``m2 - m1^2``, which is ``p (1 - p)`` for binary rewards
(where ``m2 = m1 = p``) and the group reward variance for rewards in [0, 1].

All state is parallel numpy arrays indexed by problem id, and every update touches only the ids given.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np


class Estimator:
    """Base: per-problem moment estimates, updated from whole groups.

    Subclasses set ``name`` and implement :meth:`update`; ``state_dict`` holds arrays only.
    """

    name: ClassVar[str] = ""

    def __init__(self, num_problems: int) -> None:
        self.num_problems = num_problems

    def update(self, ids: np.ndarray, m1: np.ndarray, m2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fold new group moments into the estimates of distinct ``ids``; returns ``(p, priority)``. O(k)."""
        raise NotImplementedError

    def config(self) -> dict:
        """Constructor arguments, for state validation."""
        return {}

    def state_dict(self) -> dict[str, np.ndarray]:
        """Arrays that restore this estimator exactly."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore from :meth:`state_dict`."""


def _variance(m1: np.ndarray, m2: np.ndarray) -> np.ndarray:
    # Clamp tiny negative values from rounding; exact 0 for constant groups of 0s and 1s.
    return np.maximum(m2 - m1 * m1, 0.0)


class LastGroup(Estimator):
    """The last observed group alone (the paper's form): priority = that group's reward variance."""

    name = "last"

    def update(self, ids, m1, m2):
        return m1, _variance(m1, m2)


class EMAEstimator(Estimator):
    """Exponential moving average of the moments: ``m <- (1 - decay) * m + decay * m_new``.

    The first group of a problem initializes its estimate. Smooths the noise of small groups at the cost
    of reacting more slowly; a problem only reaches priority 0 (and a pool) when every group so far was
    constant, so it suits ``min_priority > 0``.
    """

    name = "ema"

    def __init__(self, num_problems: int, decay: float = 0.5) -> None:
        super().__init__(num_problems)
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"ema decay must be in (0, 1], got {decay}")
        self.decay = float(decay)
        self._m1 = np.zeros(num_problems)
        self._m2 = np.zeros(num_problems)
        self._seen = np.zeros(num_problems, dtype=bool)

    def update(self, ids, m1, m2):
        d = np.where(self._seen[ids], self.decay, 1.0)
        self._m1[ids] = (1.0 - d) * self._m1[ids] + d * m1
        self._m2[ids] = (1.0 - d) * self._m2[ids] + d * m2
        self._seen[ids] = True
        p = self._m1[ids]
        return p, _variance(p, self._m2[ids])

    def config(self):
        return {"decay": self.decay}

    def state_dict(self):
        return {"m1": self._m1.copy(), "m2": self._m2.copy(), "seen": self._seen.copy()}

    def load_state_dict(self, state):
        self._m1 = np.asarray(state["m1"], dtype=np.float64).copy()
        self._m2 = np.asarray(state["m2"], dtype=np.float64).copy()
        self._seen = np.asarray(state["seen"], dtype=bool).copy()


class WindowEstimator(Estimator):
    """Pooled moments of the last ``window`` groups of each problem (groups weighted equally)."""

    name = "window"

    def __init__(self, num_problems: int, window: int = 4) -> None:
        super().__init__(num_problems)
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.window = int(window)
        self._m1 = np.zeros((num_problems, self.window))
        self._m2 = np.zeros((num_problems, self.window))
        self._count = np.zeros(num_problems, dtype=np.int64)

    def update(self, ids, m1, m2):
        slot = self._count[ids] % self.window
        self._m1[ids, slot] = m1
        self._m2[ids, slot] = m2
        self._count[ids] += 1
        n = np.minimum(self._count[ids], self.window)
        # Slots never written hold 0 and add nothing to the sums.
        p = self._m1[ids].sum(axis=1) / n
        return p, _variance(p, self._m2[ids].sum(axis=1) / n)

    def config(self):
        return {"window": self.window}

    def state_dict(self):
        return {"m1": self._m1.copy(), "m2": self._m2.copy(), "count": self._count.copy()}

    def load_state_dict(self, state):
        self._m1 = np.asarray(state["m1"], dtype=np.float64).reshape(self.num_problems, self.window).copy()
        self._m2 = np.asarray(state["m2"], dtype=np.float64).reshape(self.num_problems, self.window).copy()
        self._count = np.asarray(state["count"], dtype=np.int64).copy()


ESTIMATORS: dict[str, type[Estimator]] = {cls.name: cls for cls in (LastGroup, EMAEstimator, WindowEstimator)}
