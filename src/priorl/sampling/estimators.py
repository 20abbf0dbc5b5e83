"""Estimators of a problem's success statistics, from which its priority follows.

Each group of rollout rewards is summarized by its size and first two moments, ``m1 = mean(r)`` and
``m2 = mean(r^2)``. The priority is the reward variance they imply, ``m2 - m1^2``, which is ``p (1 - p)`` for
binary rewards (where ``m2 = m1 = p``) and the group reward variance for rewards in [0, 1]. :class:`LastGroup`
(the paper's form) is the one presets use; the moving-average, window and Beta-posterior estimators are in
:mod:`priorl.sampling.experimental.estimators`.

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

    def update(
        self, ids: np.ndarray, m1: np.ndarray, m2: np.ndarray, size: np.ndarray, now: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fold new groups (``size`` rewards with moments ``m1``, ``m2``) into the estimates of distinct ``ids``.

        ``now`` is the sampler's call count (the beta estimator ages its level priors by it). Returns ``(p, priority)``
        for those ids. O(k).
        """
        raise NotImplementedError

    def config(self) -> dict:
        """Constructor arguments, for state validation."""
        return {}

    def state_dict(self) -> dict[str, np.ndarray]:
        """Arrays that restore this estimator exactly."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore from :meth:`state_dict`."""


def implied_variance(m1: np.ndarray, m2: np.ndarray) -> np.ndarray:
    """``m2 - m1^2``, the reward variance of groups with these moments (exact 0 for constant groups of 0s and 1s;
    tiny negative values from rounding clamped)."""
    return np.maximum(m2 - m1 * m1, 0.0)


class LastGroup(Estimator):
    """The last observed group alone (the paper's form): priority = that group's reward variance."""

    name = "last"

    def update(self, ids, m1, m2, size, now=0):
        return m1, implied_variance(m1, m2)
