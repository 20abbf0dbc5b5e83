"""Empirical-Bayes Beta priors over success rates, one per level of the data, kept up to date in O(1).

The beta estimator (:class:`~priorl.sampling.estimators.BetaEstimator`) gives each problem a
``Beta(alpha0 + s, beta0 + f)`` posterior. The prior ``Beta(alpha0, beta0)`` is fit from the problems
already observed, per *level* (a label the data may carry, e.g. a difficulty level), by the method of
moments for a beta-binomial:

- each observed problem ``q`` contributes its evidence mean ``p_q = s_q / n_q`` (``n_q = s_q + f_q``) and
  its noise share ``h_q = sum(w^2) / n_q^2``, so that ``Var(p_q | true rate) = rate (1 - rate) h_q``
  (``h_q = 1 / n_q`` for one group of ``n_q`` rewards; with decayed evidence it is the inverse Kish
  effective sample size), with weight ``0.5 ** (age / half_life)``, ``age`` being the sampler calls since
  ``q`` was last observed: the policy moves, and a problem not looked at for a while says less about
  its level now (``half_life=None``: weight 1);
- ``mu = (sum w p_q + 1/2) / (sum w + 1)``: the weighted mean with one pseudo-problem at 1/2, which keeps
  ``mu`` inside (0, 1) when every problem of a level was solved (or failed);
- ``var_true = (var_w(p_q) - mu (1 - mu) mean_w(h_q)) / (1 - mean_w(h_q))``: the spread of the observed
  means minus the binomial noise they carry is the spread of the true rates;
- ``kappa = alpha0 + beta0 = mu (1 - mu) / var_true - 1``, clamped to ``[KAPPA_MIN, KAPPA_MAX]``
  (``var_true <= 0``: ``KAPPA_MAX``), and ``alpha0 = mu kappa``, ``beta0 = (1 - mu) kappa``.

A level whose weighted count of observed problems is below ``min_problems`` uses the prior pooled over
all levels; while the pooled count is below it too, the prior is ``Beta(1, 1)``.

State is four weighted running sums per level (count, sum of ``p_q``, of ``p_q^2`` and of ``h_q``) plus
the same four pooled. When a problem is observed again its old contribution (with its aged weight) is
subtracted and the new one added, so an update costs O(1) per problem. A level's prior is refit when one
of its problems is observed and is held until the next such observation (the pooled prior is refit at
every observation); ageing alone never changes a prior, so nothing is ever recomputed for all levels.
Index ``num_levels`` of every array holds the pooled sums.
"""

from __future__ import annotations

import numpy as np

# The prior's strength alpha0 + beta0, in pseudo-rollouts. Below 1 the prior would be more U-shaped than
# Jeffreys' Beta(1/2, 1/2); above 32 a problem's own evidence (at most G / (1 - decay) rollouts, 16 for
# the defaults G = 8, decay = 0.5) would weigh less than a third against its level, which a level fit
# from a handful of problems does not deserve.
KAPPA_MIN = 1.0
KAPPA_MAX = 32.0


def expected_variance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``E[p (1 - p)]`` for ``p ~ Beta(a, b)``: ``a b / ((a + b) (a + b + 1))``."""
    n = a + b
    return a * b / (n * (n + 1.0))


class LevelPriors:
    """Beta priors per level (and pooled) from aged running moment sums over observed problems.

    Args:
        codes: level code ``0 .. num_levels-1`` of every problem (int64, length M).
        num_levels: number of distinct levels.
        min_problems: weighted count of observed problems a level needs before its own prior is used.
        half_life: sampler calls after which a problem's contribution weighs half; None: no ageing.
    """

    def __init__(
        self, codes: np.ndarray, num_levels: int, min_problems: int = 8, half_life: float | None = None
    ) -> None:
        self.codes = codes
        self.num_levels = int(num_levels)
        self.min_problems = int(min_problems)
        self.half_life = None if half_life is None else float(half_life)
        # Sums are stored in units of the weight at call `_t_ref`: a contribution made at call t is added
        # with weight 2^((t - t_ref) / half_life), and a stored sum times 2^(-(now - t_ref) / half_life) is
        # its aged value now. `_t_ref` moves forward (one O(L) rescale) before the weights grow too large.
        self._log2_growth = 0.0 if self.half_life is None else 1.0 / self.half_life
        self._t_ref = 0
        n = self.num_levels + 1  # the last index is the pooled prior
        self.count = np.zeros(n)
        self.sum_p = np.zeros(n)
        self.sum_p2 = np.zeros(n)
        self.sum_h = np.zeros(n)
        self._t = np.zeros(codes.size, dtype=np.int64)  # call at which each problem's contribution was made
        # The prior in force per level, refit when the level is observed: (alpha0, beta0, own prior?).
        self.alpha0 = np.ones(n)
        self.beta0 = np.ones(n)
        self.has_own = np.zeros(n, dtype=bool)

    # ------------------------------------------------------------------ updates
    def replace(
        self,
        ids: np.ndarray,
        had: np.ndarray,
        old_p: np.ndarray,
        old_h: np.ndarray,
        new_p: np.ndarray,
        new_h: np.ndarray,
        now: int = 0,
    ) -> np.ndarray:
        """Swap the contributions of distinct ``ids`` for new ones made at call ``now``; refit their levels.

        ``had``: they contributed before (with ``old_p``, ``old_h``). Returns the refit levels. O(k).
        """
        if (now - self._t_ref) * self._log2_growth > 16:  # keep stored weights below 2^16
            self._rebase(now)
        w_new = 2.0 ** ((now - self._t_ref) * self._log2_growth)
        w_old = np.where(had, np.exp2((self._t[ids] - self._t_ref) * self._log2_growth), 0.0)
        self._t[ids] = now
        deltas = (
            w_new - w_old,
            w_new * new_p - w_old * np.where(had, old_p, 0.0),
            w_new * new_p * new_p - w_old * np.where(had, old_p * old_p, 0.0),
            w_new * new_h - w_old * np.where(had, old_h, 0.0),
        )
        codes = self.codes[ids]
        for arr, delta in zip((self.count, self.sum_p, self.sum_p2, self.sum_h), deltas, strict=True):
            np.add.at(arr, codes, delta)
            arr[-1] += delta.sum()
        levels = np.append(np.unique(codes), self.num_levels)
        a0, b0, own = self._fit(levels, now)
        self.alpha0[levels], self.beta0[levels], self.has_own[levels] = a0, b0, own
        return levels[:-1]

    def _rebase(self, now: int) -> None:
        scale = 2.0 ** (-(now - self._t_ref) * self._log2_growth)
        for arr in (self.count, self.sum_p, self.sum_p2, self.sum_h):
            arr *= scale
        self._t_ref = now

    # ------------------------------------------------------------------ priors
    def _fit(self, index: np.ndarray, now: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(alpha0, beta0, enough)`` from the sums at ``index`` aged to call ``now``. O(k)."""
        scale = 2.0 ** (-(now - self._t_ref) * self._log2_growth)
        n = self.count[index] * scale
        enough = n >= self.min_problems - 1e-9
        n_safe = np.maximum(n, 1e-300)
        s1, s2, sh = self.sum_p[index] * scale, self.sum_p2[index] * scale, self.sum_h[index] * scale
        mu = np.clip((s1 + 0.5) / (n + 1.0), 1e-6, 1.0 - 1e-6)
        mean = s1 / n_safe
        var_obs = np.maximum(s2 / n_safe - mean * mean, 0.0)
        # Mean noise share; >= 1 only if every problem has a single rollout of evidence, and then the
        # spread of the observed means says nothing about the spread of the rates.
        h = np.minimum(sh / n_safe, 1.0)
        informative = h < 1.0
        var_true = np.where(informative, (var_obs - mu * (1.0 - mu) * h) / np.where(informative, 1.0 - h, 1.0), 0.0)
        positive = var_true > 0
        kappa = np.where(positive, mu * (1.0 - mu) / np.where(positive, var_true, 1.0) - 1.0, KAPPA_MAX)
        kappa = np.clip(kappa, KAPPA_MIN, KAPPA_MAX)
        alpha0 = np.where(enough, mu * kappa, 1.0)
        beta0 = np.where(enough, (1.0 - mu) * kappa, 1.0)
        return alpha0, beta0, enough

    def own(self, levels: np.ndarray) -> np.ndarray:
        """Whether each level's prior in force is its own (else the pooled one). O(k)."""
        return self.has_own[np.asarray(levels, dtype=np.int64)]

    def fitted(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The last fit ``(alpha0, beta0)`` at ``index`` (a level, or ``num_levels`` for pooled). O(k)."""
        index = np.asarray(index, dtype=np.int64)
        return self.alpha0[index], self.beta0[index]

    def prior_of(self, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The prior in force for each level: its own, or the pooled one while it has too few problems."""
        levels = np.asarray(levels, dtype=np.int64)
        return self.fitted(np.where(self.own(levels), levels, self.num_levels))

    def pooled(self) -> tuple[float, float]:
        """The pooled prior ``(alpha0, beta0)`` (``Beta(1, 1)`` until enough problems were observed)."""
        return float(self.alpha0[-1]), float(self.beta0[-1])

    # ------------------------------------------------------------------ state
    _ARRAYS = ("count", "sum_p", "sum_p2", "sum_h", "alpha0", "beta0", "has_own")

    def state_dict(self) -> dict:
        out = {k: getattr(self, k).copy() for k in self._ARRAYS}
        out.update(t=self._t.copy(), t_ref=self._t_ref)
        return out

    def load_state_dict(self, state: dict) -> None:
        n = self.num_levels + 1
        loaded = {}
        for k in self._ARRAYS:
            arr = np.asarray(state[k], dtype=bool if k == "has_own" else np.float64)
            if arr.shape != (n,):
                raise ValueError(f"prior state field {k!r} has shape {arr.shape}, expected ({n},) for {n - 1} levels")
            loaded[k] = arr.copy()
        t = np.asarray(state["t"], dtype=np.int64)
        if t.shape != self._t.shape:
            raise ValueError(f"prior state field 't' has shape {t.shape}, expected {self._t.shape}")
        for k, v in loaded.items():
            setattr(self, k, v)
        self._t = t.copy()
        self._t_ref = int(state["t_ref"])
