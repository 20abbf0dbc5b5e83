"""Experimental estimators of a problem's success statistics (no preset or default uses them; the ``beta``
estimator is the ``experimental-beta`` presets'). See :mod:`priorl.sampling.estimators` for the protocol.

The moment estimators (``ema``, ``window``) combine a problem's groups into estimates of both moments; their
priority is the reward variance they imply. The ``beta`` estimator keeps a posterior over the success rate
instead, and its priority is the posterior expected variance, which accounts for how much evidence there is.
"""

from __future__ import annotations

import numpy as np

from priorl.sampling.estimators import Estimator, LastGroup, implied_variance
from priorl.sampling.experimental.priors import LevelPriors, expected_variance


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

    def update(self, ids, m1, m2, size, now=0):
        d = np.where(self._seen[ids], self.decay, 1.0)
        self._m1[ids] = (1.0 - d) * self._m1[ids] + d * m1
        self._m2[ids] = (1.0 - d) * self._m2[ids] + d * m2
        self._seen[ids] = True
        p = self._m1[ids]
        return p, implied_variance(p, self._m2[ids])

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

    def update(self, ids, m1, m2, size, now=0):
        slot = self._count[ids] % self.window
        self._m1[ids, slot] = m1
        self._m2[ids, slot] = m2
        self._count[ids] += 1
        n = np.minimum(self._count[ids], self.window)
        # Slots never written hold 0 and add nothing to the sums.
        p = self._m1[ids].sum(axis=1) / n
        return p, implied_variance(p, self._m2[ids].sum(axis=1) / n)

    def config(self):
        return {"window": self.window}

    def state_dict(self):
        return {"m1": self._m1.copy(), "m2": self._m2.copy(), "count": self._count.copy()}

    def load_state_dict(self, state):
        self._m1 = np.asarray(state["m1"], dtype=np.float64).reshape(self.num_problems, self.window).copy()
        self._m2 = np.asarray(state["m2"], dtype=np.float64).reshape(self.num_problems, self.window).copy()
        self._count = np.asarray(state["count"], dtype=np.int64).copy()


class BetaEstimator(Estimator):
    """A Beta posterior over each problem's success rate, with forgetting and an empirical-Bayes prior per level.

    **Evidence.** A group of ``G`` rewards adds ``s = sum(r)`` successes and ``f = sum(1 - r)`` failures.
    Before it is added, the problem's old evidence is multiplied by ``decay``: with the default 0.5 old
    evidence halves at every new group, so a policy that moves is followed within a few visits, and the
    evidence of a problem saturates at ``G / (1 - decay)`` rollouts (16 for G = 8). ``decay = 1`` never
    forgets; ``decay = 0`` keeps only the last group (plus the prior).

    **Prior.** ``Beta(alpha0, beta0)`` of the problem's level, fit from the observed problems by
    :class:`~priorl.sampling.priors.LevelPriors` (the pooled prior while the level has fewer than
    ``min_problems`` observed problems, ``Beta(1, 1)`` before that), each problem's latest estimate
    weighted by ``0.5 ** (age / prior_half_life)`` with ``age`` in sampler calls since it was observed.

    **Posterior and priority.** ``a = alpha0 + s``, ``b = beta0 + f``; ``p`` is the posterior mean
    ``a / (a + b)`` and the priority is the posterior expected reward variance
    ``E[p (1 - p)] = a b / ((a + b) (a + b + 1))``. It is below ``p (1 - p)`` of the mean by the
    posterior's own spread, and stays above 0 however one-sided the evidence, so a problem that failed
    8 times out of 8 keeps a priority that reflects how likely such a run is for a problem of its level.
    The prior used is the one in force when the problem is observed: a later change of its level's prior
    reaches it at its next observation (so an update stays O(1) per problem).

    **Rewards in [0, 1] that are not binary** are treated as fractional successes (a quasi-Bernoulli
    model of the mean reward): ``p`` estimates the mean reward ``m`` and the priority estimates ``m (1 - m)``,
    an upper bound of the reward variance (``var(r) <= m (1 - m)`` for ``r`` in [0, 1]), reached by binary
    rewards; a problem whose rewards are all 0.5 keeps a high priority although its groups carry no signal.

    Args:
        num_problems: M.
        levels: level code ``0 .. num_levels-1`` of each problem (int64 array of length M).
        num_levels: number of levels (1: one pooled prior).
        decay: factor on a problem's old evidence before each new group, in [0, 1].
        min_problems: observed problems a level needs before its own prior replaces the pooled one.
        prior_half_life: sampler calls after which an observed problem weighs half in its level's prior;
            None: no ageing.
    """

    name = "beta"

    def __init__(
        self,
        num_problems: int,
        levels: np.ndarray | None = None,
        num_levels: int = 1,
        decay: float = 0.5,
        min_problems: int = 8,
        prior_half_life: float | None = 50.0,
    ) -> None:
        super().__init__(num_problems)
        if isinstance(decay, bool) or not isinstance(decay, (int, float, np.floating)) or not 0.0 <= decay <= 1.0:
            raise ValueError(f"beta_decay must be a number in [0, 1], got {decay!r}")
        if isinstance(min_problems, bool) or not isinstance(min_problems, (int, np.integer)) or min_problems < 1:
            raise ValueError(f"prior_min_problems must be an int >= 1, got {min_problems!r}")
        if prior_half_life is not None and (
            isinstance(prior_half_life, bool)
            or not isinstance(prior_half_life, (int, float, np.integer, np.floating))
            or not prior_half_life > 0
            or not np.isfinite(prior_half_life)
        ):
            raise ValueError(f"prior_half_life must be None or a number > 0, got {prior_half_life!r}")
        self.decay = float(decay)
        self.min_problems = int(min_problems)
        self.prior_half_life = None if prior_half_life is None else float(prior_half_life)
        codes = np.zeros(num_problems, dtype=np.int64) if levels is None else np.asarray(levels, dtype=np.int64)
        self.levels = codes
        self.priors = LevelPriors(codes, num_levels, self.min_problems, self.prior_half_life)
        self._s = np.zeros(num_problems)  # decayed successes
        self._f = np.zeros(num_problems)  # decayed failures
        self._w2 = np.zeros(num_problems)  # decayed sum of squared rollout weights (for the noise share)
        self._a = np.ones(num_problems)  # posterior as of each problem's last observation
        self._b = np.ones(num_problems)

    def update(self, ids, m1, m2, size, now=0):
        s, f, w2 = self._s[ids], self._f[ids], self._w2[ids]
        n_old = s + f
        had = n_old > 0
        n_safe = np.where(had, n_old, 1.0)
        old_p, old_h = s / n_safe, w2 / (n_safe * n_safe)
        g = size.astype(np.float64)
        d = self.decay
        s = d * s + g * m1
        f = d * f + g * (1.0 - m1)
        w2 = d * d * w2 + g  # each new rollout has weight 1
        n = s + f
        self._s[ids], self._f[ids], self._w2[ids] = s, f, w2
        self.priors.replace(ids, had, old_p, old_h, s / n, w2 / (n * n), now)
        a0, b0 = self.priors.prior_of(self.levels[ids])
        a, b = a0 + s, b0 + f
        self._a[ids], self._b[ids] = a, b
        return a / (a + b), expected_variance(a, b)

    def posterior(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(a, b)`` of each observed problem's posterior, as of its last observation. O(k)."""
        return self._a[ids], self._b[ids]

    def level_prior(self, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(alpha0, beta0)`` in force now for each level (what an unseen problem of it is drawn from). O(k)."""
        return self.priors.prior_of(levels)

    def config(self):
        return {
            "decay": self.decay,
            "min_problems": self.min_problems,
            "prior_half_life": self.prior_half_life,
            "num_levels": self.priors.num_levels,
        }

    def state_dict(self):
        return {
            "s": self._s.copy(),
            "f": self._f.copy(),
            "w2": self._w2.copy(),
            "a": self._a.copy(),
            "b": self._b.copy(),
            "levels": self.levels.copy(),
            "priors": self.priors.state_dict(),
        }

    def load_state_dict(self, state):
        M = self.num_problems
        levels = np.asarray(state["levels"], dtype=np.int64)
        if levels.shape != (M,) or not np.array_equal(levels, self.levels):
            raise ValueError("sampler state was saved with other problem levels than this sampler's `levels`")
        arrays = {k: np.asarray(state[k], dtype=np.float64) for k in ("s", "f", "w2", "a", "b")}
        for name, arr in arrays.items():
            if arr.shape != (M,):
                raise ValueError(f"beta estimator state field {name!r} has shape {arr.shape}, expected ({M},)")
        self.priors.load_state_dict(state["priors"])
        self._s, self._f, self._w2, self._a, self._b = (arrays[k].copy() for k in ("s", "f", "w2", "a", "b"))


ESTIMATORS: dict[str, type[Estimator]] = {
    cls.name: cls for cls in (LastGroup, EMAEstimator, WindowEstimator, BetaEstimator)
}
