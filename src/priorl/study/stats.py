"""A study's statistics: curves on a common grid, completions to a target, the tuning criterion, and paired
bootstrap intervals for ratios to the baseline. Pure numpy (and the standard library's normal distribution).

- **Curves.** Each run's held-out accuracy, cumulative trained tokens and cumulative training wall time (the
  logged ``time/step``, not the run's elapsed time, which depends on what shared its cores) are interpolated onto
  one grid of completions, ``k * budget / eval_points``.
- **Completions to a target** are read off a *seed-mean* curve (linear between evaluations): the first grid
  interval where the mean reaches the target. A curve that never reaches it is censored: ``inf``, "beyond the
  budget". Reading each noisy seed's first crossing instead would be biased early.
- **Intervals.** Seeds are resampled with replacement; each replicate's mean curve gives its completions to the
  target. For a ratio to the baseline the seed indices are resampled *jointly* (the presets share seeds) and the
  ratio is taken within each replicate. The interval is BCa (bias-corrected and accelerated, with the jackknife
  over seeds), or the percentile interval where censoring makes the jackknife undefined (``method`` says which).
- **Final accuracy** gets a 95% t interval over seeds (:func:`t_interval`).
- **Tuning criterion.** Completions to the 90% target on the validation curve, censored runs last; the area under
  the validation curve (higher first) breaks ties.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

TARGET_FRACTIONS = (0.5, 0.75, 0.9)
CRITERION_FRACTION = 0.9
N_BOOT = 4000
_NORMAL = NormalDist()


@dataclass
class Curves:
    """One preset's runs on a common grid: ``x`` completions ``[K]``; per seed ``acc``, cumulative ``tokens``
    (trained) and ``wall`` (training seconds) ``[S, K]``; ``seeds`` in row order."""

    x: np.ndarray
    acc: np.ndarray
    tokens: np.ndarray
    wall: np.ndarray
    seeds: list[int]

    def take(self, seeds: list[int]) -> Curves:
        rows = [self.seeds.index(s) for s in seeds]
        return Curves(self.x, self.acc[rows], self.tokens[rows], self.wall[rows], list(seeds))


def grid(budget: int, eval_points: int) -> np.ndarray:
    """Completions at which curves are compared: ``0, budget/eval_points, ..., budget``."""
    return np.linspace(0.0, float(budget), eval_points + 1)


def run_curves(x: np.ndarray, evals: list[dict], metrics: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One run's (accuracy, cumulative trained tokens, cumulative training seconds) at completions ``x``.

    Accuracy is interpolated between evaluations (held at the last one past it); tokens and seconds between
    steps, from 0 at 0 completions."""
    ex = np.array([e["rollouts_generated"] for e in evals], dtype=float)
    ey = np.array([e["accuracy"] for e in evals], dtype=float)
    acc = np.interp(x, ex, ey)
    mx = np.array([0.0] + [m["rollouts_generated"] for m in metrics], dtype=float)
    tok = np.cumsum([0.0] + [float(m.get("tokens_trained", 0.0)) for m in metrics])
    sec = np.cumsum([0.0] + [float(m.get("time/step", 0.0)) for m in metrics])
    return acc, np.interp(x, mx, tok), np.interp(x, mx, sec)


def curves(x: np.ndarray, runs: list[dict]) -> Curves | None:
    """The finished runs (each ``seed``, ``evals``, ``metrics``) of one preset on grid ``x``; None if none."""
    ok = [r for r in runs if r.get("evals")]
    if not ok:
        return None
    rows = [run_curves(x, r["evals"], r.get("metrics") or []) for r in ok]
    acc, tok, sec = (np.array([row[i] for row in rows]) for i in range(3))
    return Curves(x, acc, tok, sec, [r["seed"] for r in ok])


def first_crossing(x: np.ndarray, y: np.ndarray, target: float) -> float:
    """Completions at which curve ``y`` (at ``x``) first reaches ``target``, linear between points; ``inf`` when
    it never does (censored: beyond the budget)."""
    hit = np.nonzero(y >= target - 1e-12)[0]
    if hit.size == 0:
        return math.inf
    i = int(hit[0])
    if i == 0:
        return float(x[0])
    frac = (target - y[i - 1]) / (y[i] - y[i - 1])
    return float(x[i - 1] + frac * (x[i] - x[i - 1]))


def area(x: np.ndarray, y: np.ndarray) -> float:
    """Mean height of curve ``y`` over ``x`` (area under it divided by its width): the tie-breaker."""
    width = float(x[-1] - x[0])
    return float(np.trapezoid(y, x) / width) if width > 0 else float(y[-1])


# How a tuning cell is scored from its tuning seeds (``priorl compare --criterion``):
#   mean:  completions to the target on the seed-mean curve (the harness's original criterion);
#   worst: the worst tuning seed's completions to the target (a censored seed counts as beyond the budget), so one
#          lucky seed cannot win a rate that collapses on another; the seed-mean completions break ties.
CRITERIA = ("mean", "worst")
DEFAULT_CRITERION = "mean"
# A tuning run collapsed when its final accuracy fell below its own best by more than COLLAPSE_POINTS, or by more
# than half of what it had gained over its first evaluation, whichever is larger.
COLLAPSE_POINTS = 0.10


def collapsed(y: np.ndarray) -> bool:
    """Whether one run's accuracy curve ``y`` ends far below its best (see :data:`COLLAPSE_POINTS`)."""
    best, final, first = float(np.max(y)), float(y[-1]), float(y[0])
    return best - final > max(COLLAPSE_POINTS, 0.5 * (best - first))


def criterion(c: Curves, target: float, how: str = DEFAULT_CRITERION) -> dict:
    """The tuning criterion of one cell under ``how`` (:data:`CRITERIA`): ``completions`` (its score; ``None`` when
    censored), ``mean_completions`` (on the seed-mean curve), ``per_seed`` completions (``None`` censored),
    ``censored`` seeds, ``collapsed`` seeds (:func:`collapsed`), ``auc`` and ``final`` (seed-mean accuracy at the
    end)."""
    if how not in CRITERIA:
        raise ValueError(f"criterion {how!r}: expected one of {', '.join(CRITERIA)}")
    mean = c.acc.mean(axis=0)
    hit = first_crossing(c.x, mean, target)
    seeds = [first_crossing(c.x, row, target) for row in c.acc]
    worst = max(seeds)
    score = hit if how == "mean" else worst
    return {
        "criterion": how,
        "completions": None if math.isinf(score) else score,
        "mean_completions": None if math.isinf(hit) else hit,
        "per_seed": [None if math.isinf(v) else v for v in seeds],
        "censored": sum(1 for v in seeds if math.isinf(v)),
        "collapsed": sum(1 for row in c.acc if collapsed(row)),
        "auc": area(c.x, mean),
        "final": float(mean[-1]),
    }


def rank_key(score: dict) -> tuple:
    """Sort key of a cell's criterion: reached first, fewer completions first, then larger area. Under the
    worst-seed criterion, ties and unreached cells order by fewer censored seeds and then by the seed-mean
    completions before the area (the mean criterion keeps its original order exactly)."""
    reached = score["completions"] is not None
    head = (not reached, score["completions"] if reached else 0.0)
    if score.get("criterion") == "worst":
        mean = score.get("mean_completions")
        return (*head, score.get("censored", 0), mean if mean is not None else math.inf, -score["auc"])
    return (*head, -score["auc"])


def _reads(c: Curves, idx: np.ndarray, target: float) -> np.ndarray:
    """Per replicate (rows of ``idx``, seed indices): completions, tokens and seconds to ``target`` ``[R, 3]``."""
    acc = c.acc[idx].mean(axis=1)  # [R, K]
    tok = c.tokens[idx].mean(axis=1)
    sec = c.wall[idx].mean(axis=1)
    out = np.full((idx.shape[0], 3), math.inf)
    for r in range(idx.shape[0]):
        hit = first_crossing(c.x, acc[r], target)
        if math.isfinite(hit):
            out[r] = (hit, np.interp(hit, c.x, tok[r]), np.interp(hit, c.x, sec[r]))
    return out


def bca_interval(estimate: float, boots: np.ndarray, jack: np.ndarray, level: float = 0.95) -> tuple[list, str]:
    """A BCa interval from bootstrap replicates ``boots`` and jackknife values ``jack`` (leave one seed out).

    ``inf`` replicates (censored) are allowed and order last. Falls back to the percentile interval when the
    estimate or a jackknife value is not finite (the acceleration is then undefined). Returns ``([lo, hi],
    method)``; a bound that is ``inf`` means "beyond the budget"."""
    boots = np.sort(boots[~np.isnan(boots)])
    if boots.size == 0:
        return [None, None], "none"
    alpha = (1 - level) / 2
    qs = np.array([alpha, 1 - alpha])
    method = "percentile"
    if math.isfinite(estimate) and np.all(np.isfinite(jack)) and jack.size > 2:
        p = np.mean(boots < estimate) + 0.5 * np.mean(boots == estimate)
        p = min(max(p, 1.0 / (2 * boots.size)), 1 - 1.0 / (2 * boots.size))
        z0 = _NORMAL.inv_cdf(p)
        d = jack.mean() - jack
        den = 6.0 * float(np.sum(d**2)) ** 1.5
        a = float(np.sum(d**3)) / den if den > 0 else 0.0
        adjusted = []
        for q in qs:
            z = _NORMAL.inv_cdf(q)
            adjusted.append(_NORMAL.cdf(z0 + (z0 + z) / (1 - a * (z0 + z))))
        qs = np.array(adjusted)
        method = "bca"
    # order statistics, no interpolation, so that inf bounds stay inf
    pos = np.clip(np.ceil(qs * boots.size).astype(int) - 1, 0, boots.size - 1)
    return [float(boots[pos[0]]), float(boots[pos[1]])], method


def _jack_indices(n: int) -> np.ndarray:
    return np.array([[j for j in range(n) if j != i] for i in range(n)])


def to_target(c: Curves, target: float, *, n_boot: int = N_BOOT, rng: np.random.Generator) -> dict:
    """Completions to ``target`` for one preset: ``mean`` (off the seed-mean curve; None when censored), ``ci95``
    (bootstrap over seeds; None bounds are beyond the budget), ``reached`` (share of seeds whose own curve reached
    it), ``censored`` and ``method``."""
    n = c.acc.shape[0]
    estimate = first_crossing(c.x, c.acc.mean(axis=0), target)
    out = {
        "target": float(target),
        "mean": None if math.isinf(estimate) else estimate,
        "censored": math.isinf(estimate),
        "reached": float(np.mean([math.isfinite(first_crossing(c.x, row, target)) for row in c.acc])),
        "seeds": n,
    }
    if n < 2:
        out.update(ci95=None, method="none (one seed: no interval)")
        return out
    idx = rng.integers(0, n, size=(n_boot, n))
    boots = _reads(c, idx, target)[:, 0]
    jack = _reads(c, _jack_indices(n), target)[:, 0]
    ci, method = bca_interval(estimate, boots, jack)
    out.update(ci95=[_finite(v) for v in ci], method=method)
    return out


def ratio_to_baseline(
    c: Curves, base: Curves, target: float, *, n_boot: int = N_BOOT, rng: np.random.Generator
) -> dict:
    """Paired ratios of a preset to the baseline at ``target``: ``completions``, ``tokens`` (trained) and ``wall``
    (training seconds), each ``mean`` (from the full seed-mean curves), ``ci95`` and ``method``. Seeds both have
    are resampled jointly and the ratio is taken within each replicate; a replicate where both are censored is
    undefined (``undefined`` counts them), where only the preset is, the ratio is ``inf`` (None in JSON). Where only
    the baseline is censored, it is counted as reaching the target at the budget, so the ratio is an *upper bound*
    (the baseline would need more): ``upper_bound`` is True when the point estimate's baseline is censored."""
    seeds = [s for s in c.seeds if s in base.seeds]
    out: dict = {"seeds": len(seeds), "target": float(target)}
    if not seeds:
        return {**out, **{k: {"mean": None, "ci95": None, "method": "none (no shared seed)"} for k in _WHAT}}
    a, b = c.take(seeds), base.take(seeds)
    n = len(seeds)
    full = np.arange(n)[None, :]
    base_full = _reads(b, full, target)
    censored = bool(np.isinf(base_full[0, 0]))
    cap = np.array([float(c.x[-1]), float(b.tokens[:, -1].mean()), float(b.wall[:, -1].mean())])
    est = _ratio(_reads(a, full, target), base_full, cap)[0]
    boots = jack = None
    if n >= 2:
        idx = rng.integers(0, n, size=(n_boot, n))
        boots = _ratio(_reads(a, idx, target), _reads(b, idx, target), cap)
        j = _jack_indices(n)
        jack = _ratio(_reads(a, j, target), _reads(b, j, target), cap)
    for col, name in enumerate(_WHAT):
        entry = {"mean": _finite(est[col]), "upper_bound": censored}
        if boots is None:
            entry.update(ci95=None, method="none (one seed: no interval)")
        else:
            ci, method = bca_interval(float(est[col]), boots[:, col], jack[:, col])
            entry.update(ci95=[_finite(v) for v in ci], method=method,
                         undefined=float(np.mean(np.isnan(boots[:, col]))))  # fmt: skip
        out[name] = entry
    return out


_WHAT = ("completions", "tokens", "wall")


def _ratio(a: np.ndarray, b: np.ndarray, cap: np.ndarray | None = None) -> np.ndarray:
    """``a / b`` per column; inf/inf is undefined (nan), inf/x is inf, and x/inf is ``x / cap`` (the baseline
    counted as reaching the target at the budget: an upper bound) or 0 without a cap."""
    both = np.isinf(a) & np.isinf(b)
    if cap is not None:
        b = np.where(np.isinf(b) & ~np.isinf(a), np.broadcast_to(cap, b.shape), b)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = a / b
    r[both] = np.nan
    r[(a == 0) & (b == 0)] = 1.0  # both there before any training
    return r


def _finite(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
         11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
         20: 2.086, 25: 2.060, 30: 2.042}  # fmt: skip


def t_interval(values: list[float], bounds: tuple[float, float] = (0.0, 1.0)) -> list[float] | None:
    """The 95% t interval of the mean of ``values`` (None for fewer than 2), cut to ``bounds`` (an accuracy's)."""
    n = len(values)
    if n < 2:
        return None
    df = n - 1
    t = _T975.get(df) or (_T975[max(k for k in _T975 if k <= df)] if df < 30 else 1.96)
    m, s = float(np.mean(values)), float(np.std(values, ddof=1))
    return [max(bounds[0], m - t * s / math.sqrt(n)), min(bounds[1], m + t * s / math.sqrt(n))]
