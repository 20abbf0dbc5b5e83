"""Problem-level prioritized sampling (Fatemi, 2026, arXiv 2601.02648).

GRPO learns only from groups whose rewards differ. A problem's priority is the reward variance of its
rollouts, ``p (1 - p)`` for binary rewards: 0 for problems always or never solved, 0.25 at p = 0.5. The
sampler rolls out the highest-priority problems, keeps solved and unsolved ones in pools that are
retested on a schedule, and guarantees that no problem goes unsampled for more than a bounded number
of steps.

How one batch of ``B`` is composed, in this order:

1. **Unseen** problems, in a seeded random order, before any problem repeats (optimistic start).
2. **Retests**: the least recently sampled problems, whatever their pool: ``ceil(retest_fraction * B)``
   of them in every batch, and the whole batch every ``retest_every``-th call. Solved and unsolved
   problems are only ever sampled this way, so they drift to the front of the recency order and are
   retested first; an active problem whose priority stays low is reached the same way.
3. **Top priorities** among active problems: greedy top-B through an indexed heap (the paper's form).
4. If the active problems run out, more of the least recently sampled ones.

Variants (other estimators, stochastic and Thompson selection, per-level priors that let unseen problems
compete in step 3) are in :mod:`priorl.sampling.experimental`; they override the ``_make_*`` hooks below.

**Starvation bound.** With a constant batch size ``B``, every problem is sampled at least once in any
``starvation_bound(B)`` consecutive calls to :meth:`sample`, for any reward sequence: the fewest calls
``T`` whose retest slots add up to ``M`` (a problem with ``j`` problems ahead of it in recency order is
retested after at most ``j + 1`` slots, and every sampled problem moves behind it), plus the unseen
phase's ``ceil(M / B)`` calls (a problem enters the recency order only when first sampled). With
``retest_fraction = f`` alone, ``T = ceil(M / ceil(f B))``; with ``retest_every = K`` alone,
``T <= K * ceil(M / B)``.

**Cost.** ``sample(B)`` and ``observe`` of ``B`` groups cost O(B log M) (amortized for the lazy heap);
nothing per step touches all ``M`` problems. Construction and ``state_dict`` are O(M). ``undo_mark`` /
``undo_to`` undo the latest calls at O(B) amortized a step (:mod:`priorl.sampling.undo`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pydantic import Field

from priorl.options import PartOptions
from priorl.sampling.estimators import Estimator, LastGroup
from priorl.sampling.pools import ACTIVE, UNSEEN, Pools
from priorl.sampling.recency import RecencyList
from priorl.sampling.selectors import GreedySelector
from priorl.sampling.undo import Undoable
from priorl.sampling.unseen import UnseenQueues
from priorl.sampling.validation import check_batch_size, check_num_problems

STATE_VERSION = 2


class PrioritizedOptions(PartOptions):
    """What a config may set on :class:`PrioritizedSampler` (``sampler.kind: prioritized``)."""

    retest_every: int | None = Field(
        10,
        ge=1,
        description="every this many calls the whole batch is retests of the least recently sampled "
        "problems; null: never",
    )
    retest_fraction: float = Field(
        0.0,
        ge=0,
        le=1,
        description="share of every batch, ceil(f B) slots, given to the least recently sampled problems",
    )
    min_priority: float = Field(
        0.0, ge=0, description="a problem at or below this priority leaves the heap for the solved or unsolved pool"
    )


class PrioritizedSampler(Undoable):
    """Choose training problems by reward variance, with retesting and a starvation bound.

    Args:
        num_problems: size ``M`` of the training set; problem ids are ``0 .. M-1``.
        seed: seeds the unseen order.
        retest_every: every this many calls, the whole batch is a retest of the least recently sampled
            problems ("all problems temporarily get equal priority"); ``None`` turns it off.
        retest_fraction: share of every batch given to the least recently sampled problems.
        min_priority: a problem whose priority is at or below this leaves the active set for the solved /
            unsolved pool.

    The priority is the last group's reward variance and the selection greedy (the paper's form). Other
    estimators (moving average, window, a Beta posterior with per-level priors) and selections (stochastic,
    Thompson) are in :class:`priorl.sampling.experimental.ExperimentalPrioritizedSampler`.

    Example::

        sampler = PrioritizedSampler(len(dataset), seed=0)
        ids = sampler.sample(64)
        rewards = [[verify(c, dataset[i]) for c in generate(dataset[i], n=8)] for i in ids]
        sampler.observe(ids, rewards)
    """

    # Whether never-sampled problems go first, before any problem repeats (an estimator with a prior lets them
    # compete by the prior's expected variance instead).
    _unseen_first = True

    def __init__(
        self,
        num_problems: int,
        *,
        seed: int = 0,
        retest_every: int | None = 10,
        retest_fraction: float = 0.0,
        min_priority: float = 0.0,
    ) -> None:
        check_num_problems(num_problems)
        if retest_every is not None and (
            isinstance(retest_every, bool) or not isinstance(retest_every, (int, np.integer)) or retest_every < 1
        ):
            raise ValueError(f"retest_every must be None or an int >= 1, got {retest_every!r}")
        if not 0.0 <= retest_fraction <= 1.0:
            raise ValueError(f"retest_fraction must be in [0, 1], got {retest_fraction!r}")
        self.num_problems = M = int(num_problems)
        self.seed = int(seed)
        self.retest_every = None if retest_every is None else int(retest_every)
        self.retest_fraction = float(retest_fraction)
        self._rng = np.random.default_rng(self.seed)
        self._estimator: Estimator = self._make_estimator(M)
        self._selector = self._make_selector(M)
        self._pools = Pools(M, min_priority)
        self._recency = RecencyList(M)

        self._priority = np.zeros(M)  # latest priority
        self._p = np.zeros(M)  # latest estimated success rate
        self._last_seq = np.full(M, -1, dtype=np.int64)  # position in the global sampling order
        self._awaiting = np.zeros(M, dtype=bool)  # sampled, rewards not yet observed
        self._n_awaiting = 0
        order = self._rng.permutation(M)
        self._unseen = self._make_unseen(order)
        self._calls = 0  # sample() calls so far
        self._seq = 0  # problems handed out so far
        self._start(order)

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
        chosen = self._unseen.take(B) if self._unseen_first else []
        retested: list[int] = []
        if len(chosen) < B:
            free = B - len(chosen)
            n_retest = free if self._is_retest_call() else min(free, self.retest_slots(B))
            retested = self._recency.oldest_n(n_retest)
            taken = np.asarray(retested, dtype=np.int64)
            self._selector.discard(taken)
            self._unseen.remove(taken)  # a never-sampled problem retested leaves its queue
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
        and ``forgetting`` / ``breakthroughs`` (last observe and ``_total``).
        """
        out = self._pools.metrics()
        out.update(self._last)
        out.update(awaiting=self._n_awaiting, heap_size=len(self._selector), calls=self._calls)
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
        """Restore from :meth:`state_dict`. Raises ValueError for a state of another size or estimator.

        The retest schedule may differ from the saved sampler's: it reads no saved state.
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
        self._after_load()
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
        in any ``T`` consecutive calls, plus ``ceil(M / B)`` for the unseen phase (when never-sampled problems go
        first). ``None`` if retesting is off (then a problem whose priority stays low
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
        return math.ceil(M / B) + lo if self._unseen_first else lo

    def _is_retest_call(self) -> bool:
        return self.retest_every is not None and self._calls % self.retest_every == 0

    def _take_top(self, n: int) -> list[int]:
        """The step-3 picks: the ``n`` best active problems from the selector."""
        return self._selector.take(n) if n > 0 else []

    # ------------------------------------------------------------------ what a variant changes
    def _make_estimator(self, num_problems: int) -> Estimator:
        """What a priority rests on: the last group (the paper's form)."""
        return LastGroup(num_problems)

    def _make_selector(self, num_problems: int):
        """How the active problems are picked: greedy top-B through an indexed heap (the paper's form)."""
        return GreedySelector(num_problems, self._rng)

    def _make_unseen(self, order: np.ndarray) -> UnseenQueues:
        """The never-sampled problems in ``order``: one queue (all alike without a prior)."""
        return UnseenQueues(order, np.zeros(self.num_problems, np.int64), 1)

    def _start(self, order: np.ndarray) -> None:
        """Called at the end of construction with the seeded order of the problems."""

    def _after_load(self) -> None:
        """Called by :meth:`load_state_dict` once the state is restored, before the selector is rebuilt."""

    def _observed(self, ids: np.ndarray) -> None:
        """Called by an observation with the distinct ids whose estimates just changed, before the pools."""

    # ------------------------------------------------------------------ updates
    def _observe_distinct(self, ids: np.ndarray, m1: np.ndarray, m2: np.ndarray, size: np.ndarray) -> None:
        p, priority = self._estimator.update(ids, m1, m2, size, now=self._calls)
        self._observed(ids)
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
