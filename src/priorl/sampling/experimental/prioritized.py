"""The prioritized (heap) sampler with experimental estimators and selections: what no preset but
``experimental-beta`` uses (``sampler.kind: experimental-prioritized``).

:class:`ExperimentalPrioritizedSampler` is :class:`~priorl.sampling.PrioritizedSampler` with:

- ``estimator``: ``"last"`` (the paper's form), ``"ema"``, ``"window"`` or ``"beta"`` (a Beta posterior per
  problem with an empirical-Bayes prior per level; priority = posterior expected reward variance, see
  :class:`~priorl.sampling.experimental.estimators.BetaEstimator`). With ``beta`` an unseen problem competes in
  the top-priority step with the expected reward variance under its level's prior (so a level that turns out
  solved stops taking whole batches), every problem is in the recency order from the start (retests reach
  never-sampled problems first), and the unseen problems wait in one queue per level.
- ``selection``: ``"greedy"`` (top priorities, heap), ``"stochastic"`` (∝ ``priority^selection_exponent +
  floor`` through a sum-tree; not with ``beta``) or ``"thompson"`` (with ``beta`` only: the
  ``thompson_candidates * B`` best re-ranked by ``p~ (1 - p~)``, ``p~`` drawn from each posterior).

Measured (benchmarks/RESULTS.md): tuned, the Beta/Thompson form was slower than tuned uniform GRPO on both mixes
where it ran (round 9); the moving-average and stochastic forms were at or below the default in the simulator
(rounds 1-2). Cost: Thompson ``sample`` is O(c B log M) with ``c = thompson_candidates``, plus O(log L) per pick
for ``L`` levels.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from priorl.sampling.estimators import Estimator
from priorl.sampling.experimental.estimators import ESTIMATORS, BetaEstimator
from priorl.sampling.experimental.priors import expected_variance
from priorl.sampling.experimental.selectors import SELECTORS, ThompsonSelector
from priorl.sampling.pools import UNSEEN
from priorl.sampling.prioritized import PrioritizedOptions, PrioritizedSampler
from priorl.sampling.unseen import UnseenQueues
from priorl.sampling.validation import check_num_problems


def level_codes(levels: Sequence[Hashable] | None, num_problems: int) -> tuple[np.ndarray, int]:
    """Map per-problem level labels to codes ``0 .. L-1`` in order of first appearance; None: one level.

    Any hashable label works (an int, a string, None for "no level"). Raises ValueError for a sequence of
    the wrong length or an unhashable label.
    """
    if levels is None:
        return np.zeros(num_problems, dtype=np.int64), 1
    if isinstance(levels, (str, bytes)):
        raise ValueError(f"levels must be a sequence with one label per problem, got the string {levels!r}")
    labels = levels.tolist() if isinstance(levels, np.ndarray) else list(levels)
    if len(labels) != num_problems:
        raise ValueError(f"levels has {len(labels)} labels, expected one per problem ({num_problems})")
    mapping: dict = {}
    try:
        codes = np.fromiter((mapping.setdefault(x, len(mapping)) for x in labels), dtype=np.int64, count=len(labels))
    except TypeError:
        bad = next(i for i, x in enumerate(labels) if not isinstance(x, Hashable))
        raise ValueError(f"level label at position {bad} is not hashable: {labels[bad]!r}") from None
    return codes, max(1, len(mapping))


def check_selection(estimator: str, selection: str, *, prefix: str = "") -> None:
    """Refuse a heap sampler's selection that its estimator cannot serve (``prefix``: ``"sampler."`` names the
    config keys, empty names the constructor's arguments)."""
    if selection == "thompson" and estimator != "beta":
        raise ValueError(
            f"{prefix}selection 'thompson' draws from each problem's posterior and needs {prefix}estimator 'beta' "
            f"(got {estimator!r})"
        )
    if selection == "stochastic" and estimator == "beta":
        raise ValueError(
            f"{prefix}selection 'stochastic' is not available with {prefix}estimator 'beta' (unseen problems "
            "compete through per-level priors, which a sum-tree over problems cannot follow in O(log M)); use "
            "'thompson', the randomized selection for the beta posterior"
        )


class ExperimentalPrioritizedOptions(PrioritizedOptions):
    """What a config may set on :class:`ExperimentalPrioritizedSampler` (``sampler.kind:
    experimental-prioritized``): the heap's options and these."""

    estimator: Literal["last", "ema", "window", "beta"] = Field(
        "last",
        description="what a priority rests on: the last group's reward variance (the paper's form), a moving "
        "average, a window of groups, or a Beta posterior per problem with a per-level prior",
    )
    ema_decay: float = Field(0.5, gt=0, le=1, description="ema: weight of the newest group")
    window: int = Field(4, ge=1, description="window: groups pooled")
    beta_decay: float = Field(0.5, ge=0, le=1, description="beta: factor on a problem's old evidence per new group")
    prior_min_problems: int = Field(8, ge=1, description="beta: observed problems before a level's own prior")
    prior_half_life: float | None = Field(
        50.0, gt=0, description="beta: calls after which a problem weighs half in its level's prior"
    )
    selection: Literal["greedy", "stochastic", "thompson"] = Field(
        "greedy",
        description="greedy: top priorities from the heap (the paper's); stochastic: a draw ∝ "
        "priority^selection_exponent + floor (not with beta); thompson: re-rank a shortlist by posterior draws "
        "(beta only)",
    )
    selection_exponent: float = Field(1.0, ge=0, description="stochastic: weight = priority^selection_exponent + floor")
    floor: float = Field(0.01, ge=0, description="stochastic: added to every weight")
    thompson_candidates: int = Field(4, ge=1, description="thompson: shortlist of candidates per batch slot")

    @model_validator(mode="after")
    def _selection_fits_estimator(self) -> ExperimentalPrioritizedOptions:
        check_selection(self.estimator, self.selection)
        return self


class ExperimentalPrioritizedSampler(PrioritizedSampler):
    """:class:`~priorl.sampling.PrioritizedSampler` with another estimator or selection (see the module docstring).

    Args (beyond the heap sampler's ``num_problems``, ``seed``, ``retest_every``, ``retest_fraction``,
    ``min_priority``):
        levels: one hashable label per problem (e.g. a difficulty level) or None (one group). Used by
            ``estimator="beta"``, which fits a prior per level; the other estimators ignore it.
        estimator: ``"last"``, ``"ema"``, ``"window"`` or ``"beta"``.
        ema_decay: weight of the newest group for ``estimator="ema"``.
        window: number of groups pooled for ``estimator="window"``.
        beta_decay: for ``estimator="beta"``, the factor on a problem's old evidence before each new group
            (0.5: old evidence halves at every new group; evidence saturates at ``G / (1 - beta_decay)``).
        prior_min_problems: for ``estimator="beta"``, observed problems a level needs before its own prior
            replaces the one pooled over all levels (before that many in all: ``Beta(1, 1)``).
        prior_half_life: for ``estimator="beta"``, sampler calls after which an observed problem's estimate
            weighs half in its level's prior (the policy moves, so old observations say less about a level
            now); None: every observed problem's latest estimate weighs the same forever.
        selection: ``"greedy"``, ``"stochastic"`` (not with ``beta``) or ``"thompson"`` (with ``beta`` only).
        selection_exponent, floor: the stochastic selection's exponent and additive floor.
        thompson_candidates: shortlist size per batch slot for ``selection="thompson"``.

    The beta estimator's priority is always above 0, so with ``min_priority=0`` nothing is parked; a threshold
    parks a problem only once its evidence supports it (with ``Beta(1, 1)`` and ``beta_decay=0.5``, a problem
    that always fails bottoms out near 0.05).
    """

    def __init__(
        self,
        num_problems: int,
        *,
        seed: int = 0,
        levels: Sequence[Hashable] | None = None,
        retest_every: int | None = 10,
        retest_fraction: float = 0.0,
        estimator: str = "last",
        ema_decay: float = 0.5,
        window: int = 4,
        beta_decay: float = 0.5,
        prior_min_problems: int = 8,
        prior_half_life: float | None = 50.0,
        selection: str = "greedy",
        selection_exponent: float = 1.0,
        floor: float = 0.01,
        thompson_candidates: int = 4,
        min_priority: float = 0.0,
    ) -> None:
        M = check_num_problems(num_problems)
        if estimator not in ESTIMATORS:
            raise ValueError(f"unknown estimator {estimator!r}; choose one of {sorted(ESTIMATORS)}")
        if selection not in SELECTORS:
            raise ValueError(f"unknown selection {selection!r}; choose one of {sorted(SELECTORS)}")
        check_selection(estimator, selection)
        self._levels, self._num_levels = level_codes(levels, M)
        self._beta = estimator == "beta"
        self._unseen_first = not self._beta  # with a prior, unseen problems compete by its expected variance
        self._estimator_spec = (estimator, {
            "ema": {"decay": ema_decay},
            "window": {"window": window},
            "beta": {"levels": self._levels, "num_levels": self._num_levels, "decay": beta_decay,
                     "min_problems": prior_min_problems, "prior_half_life": prior_half_life},
        }.get(estimator, {}))  # fmt: skip
        self._selector_spec = (selection, {
            "stochastic": {"alpha": selection_exponent, "floor": floor},
            "thompson": {"candidates": thompson_candidates},
        }.get(selection, {}))  # fmt: skip
        super().__init__(
            M, seed=seed, retest_every=retest_every, retest_fraction=retest_fraction, min_priority=min_priority
        )

    def metrics(self) -> dict:
        """The heap sampler's metrics; with ``estimator="beta"`` also the pooled prior's mean ``prior_mean`` and
        strength ``prior_strength`` (alpha0 + beta0)."""
        out = super().metrics()
        if self._beta:
            a0, b0 = self._estimator.priors.pooled()  # type: ignore[attr-defined]
            out.update(prior_mean=a0 / (a0 + b0), prior_strength=a0 + b0)
        return out

    # ------------------------------------------------------------------ the heap sampler's hooks
    def _make_estimator(self, num_problems: int) -> Estimator:
        name, kwargs = self._estimator_spec
        return ESTIMATORS[name](num_problems, **kwargs)

    def _make_selector(self, num_problems: int):
        name, kwargs = self._selector_spec
        return SELECTORS[name](num_problems, self._rng, **kwargs)

    def _make_unseen(self, order: np.ndarray) -> UnseenQueues:
        """With beta, one queue of never-sampled problems per level; else one queue."""
        if not self._beta:
            return super()._make_unseen(order)
        return UnseenQueues(order, self._levels, self._num_levels)

    def _start(self, order: np.ndarray) -> None:
        if self._beta:
            self._recency.load_order(order)  # retests reach never-sampled problems first
            self._sync_unseen_priorities(np.arange(self._num_levels))

    def _after_load(self) -> None:
        if self._beta:
            self._sync_unseen_priorities(np.arange(self._unseen.num_levels))

    def _observed(self, ids: np.ndarray) -> None:
        if self._beta:
            self._sync_unseen_priorities(np.unique(self._levels[ids]))

    def _take_top(self, n: int) -> list[int]:
        """The step-3 picks: ``n`` problems from the selector (and, with beta, the unseen queues)."""
        if n <= 0:
            return []
        if not self._beta:
            return self._selector.take(n)
        if not isinstance(self._selector, ThompsonSelector):
            return self._take_best(n)
        ids = np.asarray(self._take_best(self._selector.candidates * n), dtype=np.int64)
        est: BetaEstimator = self._estimator  # type: ignore[assignment]
        a, b = est.posterior(ids)
        unseen = self._pools.status[ids] == UNSEEN  # from the queues; the others came from the heap
        if unseen.any():
            a[unseen], b[unseen] = est.level_prior(self._levels[ids[unseen]])
        keep, rest = self._selector.rerank(a, b, n)
        back, back_unseen = ids[rest], unseen[rest]
        self._unseen.unpop(back[back_unseen])
        self._selector.restore(back[~back_unseen])
        return ids[keep].tolist()

    def _take_best(self, n: int) -> list[int]:
        """Up to ``n`` best by priority among the heap and the unseen queues' heads; ties: unseen first."""
        out: list[int] = []
        heap, queues, priority = self._selector, self._unseen, self._priority
        while len(out) < n:
            best_unseen = queues.peek()
            if best_unseen is None:
                out += heap.take(n - len(out))
                break
            top = heap.peek()
            if top is None or priority[top] <= best_unseen[0]:
                out.append(queues.pop())
            else:
                out += heap.take(1)
        return out

    def _sync_unseen_priorities(self, levels: np.ndarray) -> None:
        """Unseen problems' priority = E[p (1 - p)] under their level's prior (beta only). O(k log L)."""
        priors = self._estimator.priors  # type: ignore[attr-defined]
        a0, b0 = priors.fitted(levels)
        self._unseen.set_priorities(levels, priors.own(levels), expected_variance(a0, b0))
        pa, pb = priors.pooled()
        self._unseen.shared_priority = float(expected_variance(np.array(pa), np.array(pb)))
