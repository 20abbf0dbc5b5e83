"""Problem-level prioritized sampling (Fatemi, 2026, arXiv 2601.02648).

GRPO learns only from groups whose rewards differ. A problem's priority is the reward variance of its
rollouts, ``p (1 - p)`` for binary rewards: 0 for problems always or never solved, 0.25 at p = 0.5. The
sampler rolls out the highest-priority problems, keeps solved and unsolved ones in pools that are
retested on a schedule, and guarantees that no problem goes unsampled for more than a bounded number
of steps.

How one batch of ``B`` is composed, in this order:

1. **Unseen** problems, in a seeded random order, before any problem repeats (optimistic start). Not
   with ``estimator="beta"``: there an unseen problem competes in step 3 with the expected reward
   variance under its level's prior, so a level that turns out solved stops taking whole batches.
2. **Retests**: the least recently sampled problems, whatever their pool: ``ceil(retest_fraction * B)``
   of them in every batch, and the whole batch every ``retest_every``-th call. Solved and unsolved
   problems are only ever sampled this way, so they drift to the front of the recency order and are
   retested first; an active problem whose priority stays low is reached the same way. With
   ``estimator="beta"`` every problem is in the recency order from the start (in the seeded order), so
   retests reach never-sampled problems first.
3. **Top priorities** among active problems (and, with ``beta``, the heads of the per-level queues of
   unseen problems; at equal priority the unseen problem goes first): greedy top-B through an indexed
   heap (the paper's form), a draw ∝ ``priority^alpha + floor`` through a sum-tree
   (``selection="stochastic"``), or Thompson sampling among the ``thompson_candidates * B`` best
   (``selection="thompson"``, with ``beta``).
4. If the active problems run out, more of the least recently sampled ones.

**Starvation bound.** With a constant batch size ``B``, every problem is sampled at least once in any
``starvation_bound(B)`` consecutive calls to :meth:`sample`, for any reward sequence: the fewest calls
``T`` whose retest slots add up to ``M`` (a problem with ``j`` problems ahead of it in recency order is
retested after at most ``j + 1`` slots, and every sampled problem moves behind it), plus, for the
estimators with an unseen phase, its ``ceil(M / B)`` calls (a problem enters the recency order only when
first sampled). With ``retest_fraction = f`` alone, ``T = ceil(M / ceil(f B))``; with ``retest_every = K``
alone, ``T <= K * ceil(M / B)``.

**Cost.** ``sample(B)`` and ``observe`` of ``B`` groups cost O(B log M) (amortized for the lazy heap;
Thompson: O(c B log M) with ``c = thompson_candidates``), plus O(log L) per pick for ``L`` levels;
nothing per step touches all ``M`` problems. Construction and ``state_dict`` are O(M). ``undo_mark`` /
``undo_to`` undo the latest calls at O(B) amortized a step (:mod:`priorl.sampling.undo`).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

import numpy as np

from priorl.sampling.estimators import ESTIMATORS, BetaEstimator, Estimator
from priorl.sampling.pools import ACTIVE, UNSEEN, Pools
from priorl.sampling.priors import expected_variance
from priorl.sampling.recency import RecencyList
from priorl.sampling.selectors import SELECTORS, ThompsonSelector
from priorl.sampling.undo import Undoable
from priorl.sampling.unseen import UnseenQueues
from priorl.sampling.validation import check_batch_size, check_num_problems, check_selection

STATE_VERSION = 2


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


class PrioritizedSampler(Undoable):
    """Choose training problems by reward variance, with retesting and a starvation bound.

    Args:
        num_problems: size ``M`` of the training set; problem ids are ``0 .. M-1``.
        seed: seeds the unseen order, the stochastic selection and the Thompson draws.
        levels: one hashable label per problem (e.g. a difficulty level) or None (one group). Used by
            ``estimator="beta"``, which fits a prior per level; the other estimators ignore it.
        retest_every: every this many calls, the whole batch is a retest of the least recently sampled
            problems ("all problems temporarily get equal priority"); ``None`` turns it off.
        retest_fraction: share of every batch given to the least recently sampled problems.
        estimator: ``"last"`` (the last group, the paper's form), ``"ema"``, ``"window"``, or ``"beta"``
            (a Beta posterior per problem with an empirical-Bayes prior per level; priority = posterior
            expected reward variance, see :class:`~priorl.sampling.estimators.BetaEstimator`).
        ema_decay: weight of the newest group for ``estimator="ema"``.
        window: number of groups pooled for ``estimator="window"``.
        beta_decay: for ``estimator="beta"``, the factor on a problem's old evidence before each new group
            (0.5: old evidence halves at every new group; evidence saturates at ``G / (1 - beta_decay)``).
        prior_min_problems: for ``estimator="beta"``, observed problems a level needs before its own prior
            replaces the one pooled over all levels (before that many in all: ``Beta(1, 1)``).
        prior_half_life: for ``estimator="beta"``, sampler calls after which an observed problem's estimate
            weighs half in its level's prior (the policy moves, so old observations say less about a level
            now); None: every observed problem's latest estimate weighs the same forever.
        selection: ``"greedy"`` (top priorities, heap), ``"stochastic"`` (∝ priority^alpha + floor; not
            with ``beta``) or ``"thompson"`` (with ``beta`` only: rank the ``thompson_candidates * B``
            best by ``p~ (1 - p~)``, ``p~`` drawn from each posterior).
        alpha, floor: the stochastic selection's exponent and additive floor.
        thompson_candidates: shortlist size per batch slot for ``selection="thompson"``.
        min_priority: a problem whose priority is at or below this leaves the active set for the solved /
            unsolved pool. The beta estimator's priority is always above 0, so with ``min_priority=0``
            nothing is parked; a threshold parks a problem only once its evidence supports it (with
            ``Beta(1, 1)`` and ``beta_decay=0.5``, a problem that always fails bottoms out near 0.05).

    Example::

        sampler = PrioritizedSampler(len(dataset), seed=0)
        ids = sampler.sample(64)
        rewards = [[verify(c, dataset[i]) for c in generate(dataset[i], n=8)] for i in ids]
        sampler.observe(ids, rewards)
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
        alpha: float = 1.0,
        floor: float = 0.01,
        thompson_candidates: int = 4,
        min_priority: float = 0.0,
    ) -> None:
        check_num_problems(num_problems)
        if retest_every is not None and (
            isinstance(retest_every, bool) or not isinstance(retest_every, (int, np.integer)) or retest_every < 1
        ):
            raise ValueError(f"retest_every must be None or an int >= 1, got {retest_every!r}")
        if not 0.0 <= retest_fraction <= 1.0:
            raise ValueError(f"retest_fraction must be in [0, 1], got {retest_fraction!r}")
        if estimator not in ESTIMATORS:
            raise ValueError(f"unknown estimator {estimator!r}; choose one of {sorted(ESTIMATORS)}")
        if selection not in SELECTORS:
            raise ValueError(f"unknown selection {selection!r}; choose one of {sorted(SELECTORS)}")
        check_selection(estimator, selection)
        self.num_problems = M = int(num_problems)
        self.seed = int(seed)
        self.retest_every = None if retest_every is None else int(retest_every)
        self.retest_fraction = float(retest_fraction)
        self._levels, num_levels = level_codes(levels, M)
        self._beta = estimator == "beta"

        est_kwargs = {
            "ema": {"decay": ema_decay},
            "window": {"window": window},
            "beta": {
                "levels": self._levels,
                "num_levels": num_levels,
                "decay": beta_decay,
                "min_problems": prior_min_problems,
                "prior_half_life": prior_half_life,
            },
        }.get(estimator, {})
        self._estimator: Estimator = ESTIMATORS[estimator](M, **est_kwargs)
        self._rng = np.random.default_rng(self.seed)
        sel_kwargs = {
            "stochastic": {"alpha": alpha, "floor": floor},
            "thompson": {"candidates": thompson_candidates},
        }.get(selection, {})
        self._selector = SELECTORS[selection](M, self._rng, **sel_kwargs)
        self._pools = Pools(M, min_priority)
        self._recency = RecencyList(M)

        self._priority = np.zeros(M)  # latest priority
        self._p = np.zeros(M)  # latest estimated success rate
        self._last_seq = np.full(M, -1, dtype=np.int64)  # position in the global sampling order
        self._awaiting = np.zeros(M, dtype=bool)  # sampled, rewards not yet observed
        self._n_awaiting = 0
        order = self._rng.permutation(M)
        # Without a prior, all unseen problems are alike: one queue. With beta, one queue per level.
        self._unseen = UnseenQueues(order, self._levels if self._beta else np.zeros(M, np.int64),
                                    num_levels if self._beta else 1)  # fmt: skip
        if self._beta:
            self._recency.load_order(order)  # retests reach never-sampled problems first
            self._sync_unseen_priorities(np.arange(num_levels))
        self._calls = 0  # sample() calls so far
        self._seq = 0  # problems handed out so far

        self._last = {
            "batch_mean_priority": 0.0,
            "retested": 0,
            "retest_batch": False,
            "informative_fraction": 0.0,
        }

    # ------------------------------------------------------------------ protocol
    def sample(self, batch_size: int) -> list[int]:
        """Return ``batch_size`` distinct problem ids to roll out next. O(B log M).

        Raises ValueError if ``batch_size`` is not in ``[1, num_problems]``.
        """
        B = check_batch_size(batch_size, self.num_problems)
        self._calls += 1
        chosen = [] if self._beta else self._unseen.take(B)
        retested: list[int] = []
        if len(chosen) < B:
            free = B - len(chosen)
            n_retest = free if self._is_retest_call() else min(free, self.retest_slots(B))
            retested = self._recency.oldest_n(n_retest)
            taken = np.asarray(retested, dtype=np.int64)
            self._selector.discard(taken)
            self._unseen.remove(taken)  # a never-sampled problem retested (beta) leaves its queue
            top = self._take_top(free - len(retested))
            chosen += retested + top
            if len(chosen) < B:  # no active problem left to pick: fall back to recency order
                more = self._recency.oldest_n(B - len(chosen), exclude=set(chosen))
                self._unseen.remove(np.asarray(more, dtype=np.int64))
                retested += more
                chosen += more

        ids = np.asarray(chosen, dtype=np.int64)
        self._recency.touch_many(chosen)
        self._last_seq[ids] = self._seq + np.arange(B)
        self._seq += B
        self._n_awaiting += int(np.count_nonzero(~self._awaiting[ids]))
        self._awaiting[ids] = True
        seen = self._pools.status[ids] != UNSEEN
        self._last.update(
            batch_mean_priority=float(self._priority[ids][seen].mean()) if seen.any() else 0.0,
            retested=len(retested),
            retest_batch=self._is_retest_call(),
        )
        self._undo_log("sample", (B,), B)
        return chosen

    def observe(self, problem_ids: Sequence[int], rewards: Sequence[Sequence[float]]) -> None:
        """Record one group of rollout rewards (floats in [0, 1]) per problem and update priorities.

        ``rewards[i]`` is the sequence of rewards of problem ``problem_ids[i]``'s rollouts; a single number
        per problem raises ValueError. Problems need not have come from :meth:`sample` (e.g. warm-starting
        from offline statistics). All input is validated before anything changes. O(k log M) for k groups.
        """
        self._observe_logged(problem_ids, rewards)

    def _undo_replay_observe(self, ids, m1, m2, var, size) -> None:
        if ids.size == 0:
            return
        if len(set(ids.tolist())) == ids.size:
            self._observe_distinct(ids, m1, m2, size)
        else:  # a problem observed twice in one call: fold its groups in order
            for i in range(ids.size):
                self._observe_distinct(ids[i : i + 1], m1[i : i + 1], m2[i : i + 1], size[i : i + 1])
        self._last["informative_fraction"] = float(np.count_nonzero(var > 0.0)) / ids.size

    def metrics(self) -> dict:
        """Flat metrics (namespace them, e.g. ``sampler/``, when composing).

        Pool sizes (``unseen``, ``active``, ``solved``, ``unsolved``, ``awaiting`` rewards), the last
        batch's ``batch_mean_priority`` (over its seen problems), ``retested`` problems in it and
        whether it was a full ``retest_batch``, the ``informative_fraction`` of the last observed groups,
        and ``forgetting`` / ``breakthroughs`` (last observe and ``_total``). With ``estimator="beta"``
        also the pooled prior's mean ``prior_mean`` and strength ``prior_strength`` (alpha0 + beta0).
        """
        out = self._pools.metrics()
        out.update(self._last)
        out.update(awaiting=self._n_awaiting, heap_size=len(self._selector), calls=self._calls)
        if self._beta:
            a0, b0 = self._estimator.priors.pooled()
            out.update(prior_mean=a0 / (a0 + b0), prior_strength=a0 + b0)
        return out

    def state_dict(self) -> dict:
        """Everything needed to continue exactly: numpy arrays and JSON-able values, RNG included. O(M)."""
        return {
            "version": STATE_VERSION,
            "kind": "PrioritizedSampler",
            "num_problems": self.num_problems,
            "estimator": {"name": self._estimator.name, **self._estimator.config()},
            "rng": self._rng.bit_generator.state,
            "calls": self._calls,
            "seq": self._seq,
            "unseen": self._unseen.state_dict(),
            "recency_order": self._recency.order(),
            "priority": self._priority.copy(),
            "p": self._p.copy(),
            "last_seq": self._last_seq.copy(),
            "awaiting": self._awaiting.copy(),
            "pools": self._pools.state_dict(),
            "estimator_state": self._estimator.state_dict(),
            "last": dict(self._last),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore from :meth:`state_dict`. Raises ValueError for a state of another size, estimator or levels.

        The retest schedule and selection may differ from the saved sampler's: they read no saved state
        (but Thompson selection needs the beta estimator, which is checked).
        """
        required = ("num_problems", "estimator", "rng", "calls", "seq", "recency_order", "priority", "p",
                    "last_seq", "awaiting", "pools", "estimator_state", "last", "unseen")  # fmt: skip
        missing = [k for k in required if k not in state]
        if missing:
            raise ValueError(f"sampler state is missing keys: {missing}")
        if int(state["num_problems"]) != self.num_problems:
            raise ValueError(
                f"sampler state is for {state['num_problems']} problems, this sampler has {self.num_problems}"
            )
        mine = {"name": self._estimator.name, **self._estimator.config()}
        if dict(state["estimator"]) != mine:
            raise ValueError(f"sampler state used estimator {dict(state['estimator'])}, this sampler uses {mine}")
        M = self.num_problems
        arrays = {
            "priority": np.asarray(state["priority"], dtype=np.float64),
            "p": np.asarray(state["p"], dtype=np.float64),
            "last_seq": np.asarray(state["last_seq"], dtype=np.int64),
            "awaiting": np.asarray(state["awaiting"], dtype=bool),
        }
        for name, arr in arrays.items():
            if arr.shape != (M,):
                raise ValueError(f"sampler state field {name!r} has shape {arr.shape}, expected ({M},)")
        self._estimator.load_state_dict(state["estimator_state"])
        self._pools.load_state_dict(state["pools"])
        self._unseen.load_state_dict(state["unseen"])
        self._rng.bit_generator.state = state["rng"]
        self._priority = arrays["priority"].copy()
        self._p = arrays["p"].copy()
        self._last_seq = arrays["last_seq"].copy()
        self._awaiting = arrays["awaiting"].copy()
        self._n_awaiting = int(np.count_nonzero(self._awaiting))
        self._calls = int(state["calls"])
        self._seq = int(state["seq"])
        self._recency.load_order(np.asarray(state["recency_order"], dtype=np.int64))
        self._last = dict(state["last"])
        if self._beta:
            self._sync_unseen_priorities(np.arange(self._unseen.num_levels))
        # The selector holds exactly the active problems not awaiting rewards, keyed as when they were put.
        members = np.flatnonzero((self._pools.status == ACTIVE) & ~self._awaiting)
        self._selector.rebuild(members, self._priority[members], self._last_seq[members])
        self._undo_forget()

    # ------------------------------------------------------------------ schedule
    def retest_slots(self, batch_size: int) -> int:
        """Retest slots in an ordinary (not full-retest) batch: ``ceil(retest_fraction * batch_size)``."""
        return math.ceil(self.retest_fraction * batch_size - 1e-9) if self.retest_fraction > 0 else 0

    def starvation_bound(self, batch_size: int) -> int | None:
        """Calls to :meth:`sample` within which every problem is sampled, with a constant batch size.

        The fewest calls ``T`` whose retest slots reach ``M``, counting the full retest batches that fall
        in any ``T`` consecutive calls, plus ``ceil(M / B)`` for the unseen phase of the estimators that
        have one (all but ``beta``). ``None`` if retesting is off (then a problem whose priority stays low
        can wait forever).
        """
        M, B = self.num_problems, check_batch_size(batch_size, self.num_problems)
        per_call, K = self.retest_slots(B), self.retest_every
        if per_call == 0 and K is None:
            return None

        def slots(t: int) -> int:  # worst case: the full retest calls come as late as possible
            full = t // K if K else 0
            return (t - full) * per_call + full * B

        lo, hi = 1, M * (K or 1) + 1
        while lo < hi:
            mid = (lo + hi) // 2
            if slots(mid) >= M:
                hi = mid
            else:
                lo = mid + 1
        return lo if self._beta else math.ceil(M / B) + lo

    def _is_retest_call(self) -> bool:
        return self.retest_every is not None and self._calls % self.retest_every == 0

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

    # ------------------------------------------------------------------ updates
    def _sync_unseen_priorities(self, levels: np.ndarray) -> None:
        """Unseen problems' priority = E[p (1 - p)] under their level's prior (beta only). O(k log L)."""
        priors = self._estimator.priors  # type: ignore[attr-defined]
        a0, b0 = priors.fitted(levels)
        self._unseen.set_priorities(levels, priors.own(levels), expected_variance(a0, b0))
        pa, pb = priors.pooled()
        self._unseen.shared_priority = float(expected_variance(np.array(pa), np.array(pb)))

    def _observe_distinct(self, ids: np.ndarray, m1: np.ndarray, m2: np.ndarray, size: np.ndarray) -> None:
        p, priority = self._estimator.update(ids, m1, m2, size, now=self._calls)
        if self._beta:
            self._sync_unseen_priorities(np.unique(self._levels[ids]))
        self._unseen.remove(ids)
        status = self._pools.update(ids, p, priority)
        self._priority[ids] = priority
        self._p[ids] = p
        for pid in ids[self._last_seq[ids] < 0].tolist():  # observed without ever being sampled
            if pid not in self._recency:
                self._recency.touch(pid)
        self._n_awaiting -= int(np.count_nonzero(self._awaiting[ids]))
        self._awaiting[ids] = False
        active = status == ACTIVE
        self._selector.discard(ids[~active])
        self._selector.put(ids[active], priority[active], self._last_seq[ids[active]])
