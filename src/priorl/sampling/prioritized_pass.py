"""Prioritized selection within passes over the data: priority without parking and without concentration.

The paper's sampler (:class:`~priorl.PrioritizedSampler`, greedy top-B over a heap) measured well at
mid-budget and lost at the end of the study (benchmarks/RESULTS.md): it parks a learnable problem after one
all-fail group of 8 (at p = 0.06 that happens with probability 0.61), and its Bayesian variant spends most
of its budget repeating a few problems. This sampler keeps what works (spend generation where groups are
informative) and removes both failure modes by construction:

1. **Candidates come from an ordinary pass.** Each call takes the next ``C = ceil(candidates * B)`` problems
   of a shuffled pass over all ``M`` (each problem once per pass, a new shuffle each pass), as MoPPS and
   GRESO draw theirs from the epoch loader.
2. **B of the C are selected at random, ∝ floor + priority^selection_exponent** (without replacement: Gumbel top-k).
   The candidates not selected wait for the next pass: that is the only way a problem is skipped.
3. **Priority from evidence, never a verdict.** Each problem keeps a Beta posterior over its success rate
   (prior Beta(1, 1); a group of ``G`` rewards adds ``sum(r)`` successes and ``G - sum(r)`` failures), whose
   evidence decays by ``decay`` for each pass since it was observed, so a problem skipped for a while
   regains priority (its estimate has gone stale) and one group of failures is weak evidence.
   The priority is the posterior probability that the next group of ``G`` is informative,
   ``E[1 - p^G - (1 - p)^G]``, in (0, 1]. It weighs rare-success problems more than the variance would: at
   p = 0.06 and G = 8 it is 0.39 of its maximum, where ``p (1 - p)`` is 0.23 of its (a variance priority:
   :class:`priorl.sampling.experimental.VariancePassSampler`).
4. Optionally ``ceil(retest_fraction * B)`` slots of every batch go to the least recently sampled
   problems, for a deterministic starvation bound.

**Coverage bound.** Outside retest slots a problem is selected at most once per pass, so after ``T`` calls no
problem has more than ``ceil(T * C / M) + 1`` selections plus its retests (uniform sampling: ``ceil(T B / M) + 1``).

**Nothing parked.** Every problem is a candidate once per pass, and as a candidate it is selected with
probability at least ``1 - (1 - w_min / W)^B``, ``w_min = floor + min_priority^selection_exponent`` over the pool's
total weight ``W <= C (1 + floor)``. The weakest priority is bounded away from 0 because evidence decays: a problem
observed once per pass remembers at most ``G / (1 - decay)`` rollouts, which at G = 8 and decay 0.5 bounds the
informative priority of an always-failing (or always-succeeding) problem below by 0.32.

**Starvation bound.** With ``retest_fraction = f > 0`` every problem is sampled at least once in any
``ceil(M / ceil(f B))`` consecutive calls (the retest slots walk the least-recently-sampled order, and every
sampled problem moves behind the ones waiting). With ``f = 0`` the bound is the probabilistic one above.

**Cost.** ``sample(B)``: O(C + B log B) (C candidates' priorities in O(C G), an O(C) partition, the B picks
sorted; one O(M) shuffle per pass, i.e. per M / C calls, O(C) amortized), plus O(B) for the recency order.
``observe`` of k groups: O(k). Nothing per call touches all ``M``; ``state_dict`` is O(M). ``undo_mark`` /
``undo_to`` undo the latest calls at O(B) amortized a step (:mod:`priorl.sampling.undo`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pydantic import Field

from priorl.options import PartOptions
from priorl.sampling.passes import ShuffledPass
from priorl.sampling.pools import Pools
from priorl.sampling.recency import RecencyList
from priorl.sampling.undo import Undoable
from priorl.sampling.validation import check_batch_size, check_num_problems

STATE_VERSION = 1
PRIOR = (1.0, 1.0)  # Beta(1, 1): every success rate equally likely before any evidence
DEFAULT_GROUP_SIZE = 8  # G for a problem's informative priority before any group of that size was observed


def _number(name: str, value, lo: float, hi: float | None = None, *, lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or math.isnan(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    bad = value <= lo if lo_open else value < lo
    if bad or (hi is not None and value > hi):
        rng = f"{'(' if lo_open else '['}{lo}, {hi if hi is not None else 'inf'}{']' if hi is not None else ')'}"
        raise ValueError(f"{name} must be in {rng}, got {value!r}")
    return float(value)


def informative_probability(a: np.ndarray, b: np.ndarray, group_size: np.ndarray) -> np.ndarray:
    """``E[1 - p^G - (1 - p)^G]`` for ``p ~ Beta(a, b)``, elementwise. O(n max(G)).

    ``E[p^G] = prod_{j < G} (a + j) / (a + b + j)``: the chance that all ``G`` rollouts succeed, averaged over
    the posterior; likewise for all failing.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    g = np.asarray(group_size, np.int64)
    all_ok, all_fail = np.ones_like(a), np.ones_like(a)
    for j in range(int(g.max()) if g.size else 0):
        live = j < g
        n = a + b + j
        all_ok = np.where(live, all_ok * (a + j) / n, all_ok)
        all_fail = np.where(live, all_fail * (b + j) / n, all_fail)
    return np.clip(1.0 - all_ok - all_fail, 0.0, 1.0)


class PrioritizedPassOptions(PartOptions):
    """What a config may set on :class:`PrioritizedPassSampler` (``sampler.kind: prioritized-pass``)."""

    candidates: float = Field(
        2.0,
        ge=1,
        description="candidates per batch slot: each batch is selected from the next ceil(candidates * B) "
        "problems of the pass (1: uniform)",
    )
    selection_exponent: float = Field(
        4.0, ge=0, description="candidates are selected ∝ floor + priority^selection_exponent (0: uniform among them)"
    )
    floor: float = Field(0.01, ge=0, description="added to every candidate's weight, so none has zero chance")
    decay: float = Field(
        0.8, ge=0, le=1, description="factor on a problem's evidence per pass since it was observed (1: never forget)"
    )
    retest_fraction: float = Field(
        0.0,
        ge=0,
        le=1,
        description="share of every batch, ceil(f B) slots, given to the least recently sampled problems",
    )


class PrioritizedPassSampler(Undoable):
    """Select each batch from a without-replacement pass over the data, by posterior informativeness.

    Args:
        num_problems: size ``M`` of the training set; problem ids are ``0 .. M-1``.
        seed: seeds the passes' shuffles and the selection.
        candidates: candidates per batch slot: ``C = ceil(candidates * B)`` (at most ``M``) are drawn from
            the pass and ``B`` of them selected. 1 is uniform GRPO; larger skips more, but every problem stays
            a candidate once per pass. Must be >= 1.
        selection_exponent: sharpness of the selection: weight = ``floor + priority^selection_exponent`` (0:
            uniform among candidates).
        floor: added to every weight, so no candidate's chance is ever zero.
        decay: factor on a problem's evidence per pass since it was observed, in [0, 1] (1: never forget;
            0: only groups of the current pass count).
        retest_fraction: share of every batch given to the least recently sampled problems (0: none).

    Example::

        sampler = PrioritizedPassSampler(len(dataset), seed=0)
        ids = sampler.sample(64)
        sampler.observe(ids, [[verify(c, dataset[i]) for c in generate(dataset[i], n=8)] for i in ids])
    """

    def __init__(
        self,
        num_problems: int,
        *,
        seed: int = 0,
        candidates: float = 2.0,
        selection_exponent: float = 4.0,
        floor: float = 0.01,
        decay: float = 0.8,
        retest_fraction: float = 0.0,
    ) -> None:
        check_num_problems(num_problems)
        self.candidates = _number("candidates", candidates, 1.0)
        self.selection_exponent = _number("selection_exponent", selection_exponent, 0.0)
        self.floor = _number("floor", floor, 0.0)
        self.decay = _number("decay", decay, 0.0, 1.0)
        self.retest_fraction = _number("retest_fraction", retest_fraction, 0.0, 1.0)
        self.num_problems = M = int(num_problems)
        self.seed = int(seed)
        self._rng = np.random.default_rng(self.seed)
        self._pass = ShuffledPass(M, self._rng)
        self._recency = RecencyList(M)
        self._recency.load_order(self._rng.permutation(M))  # retests reach never-sampled problems first
        self._succ = np.zeros(M)  # decayed evidence: successes, failures
        self._fail = np.zeros(M)
        self._at = np.zeros(M, dtype=np.int64)  # pass index when the evidence was last decayed
        self._size = np.zeros(M, dtype=np.int64)  # size of the problem's last group (0: none)
        self._group_size = DEFAULT_GROUP_SIZE  # the last group size observed, for problems without one
        self._pools = Pools(M)
        self._calls = 0
        self._last = {"informative_fraction": 0.0, "batch_mean_priority": 0.0, "candidate_mean_priority": 0.0,
                      "retested": 0, "skipped": 0}  # fmt: skip

    # ------------------------------------------------------------------ protocol
    def sample(self, batch_size: int) -> list[int]:
        """Return ``batch_size`` distinct problem ids to roll out next. O(C + B log B) amortized.

        Raises ValueError if ``batch_size`` is not in ``[1, num_problems]``.
        """
        B = check_batch_size(batch_size, self.num_problems)
        self._calls += 1
        retested = self._recency.oldest_n(self.retest_slots(B))
        free = B - len(retested)
        C = min(max(free, math.ceil(self.candidates * free - 1e-9)), self.num_problems - len(retested))
        cand = np.asarray(self._pass.take(C, exclude=set(retested)), dtype=np.int64) if free else np.zeros(0, np.int64)
        pri = self.priorities(cand)
        if free and free < cand.size:
            keys = np.log(self.floor + pri**self.selection_exponent) + self._rng.gumbel(size=cand.size)
            top = np.argpartition(-keys, free - 1)[:free]
            top = top[np.argsort(-keys[top], kind="stable")]
        else:
            top = np.arange(cand.size)
        chosen = retested + cand[top].tolist()
        self._recency.touch_many(chosen)
        self._last.update(
            batch_mean_priority=float(pri[top].mean()) if top.size else 0.0,
            candidate_mean_priority=float(pri.mean()) if pri.size else 0.0,
            retested=len(retested),
            skipped=int(cand.size - top.size),
        )
        self._undo_log("sample", (B,), B)
        return chosen

    def observe(self, problem_ids: Sequence[int], rewards: Sequence[Sequence[float]]) -> None:
        """Record one group of rollout rewards (floats in [0, 1]) per problem. O(k) for k groups.

        ``rewards[i]`` is the sequence of rewards of problem ``problem_ids[i]``'s rollouts; a single number
        per problem raises ValueError. All input is validated before anything changes; a problem may appear
        more than once (its groups are folded in order).
        """
        self._observe_logged(problem_ids, rewards)

    def _undo_replay_observe(self, ids, m1, m2, var, size) -> None:
        if ids.size == 0:
            return
        self._decay_to_now(np.unique(ids))
        np.add.at(self._succ, ids, m1 * size)
        np.add.at(self._fail, ids, (1.0 - m1) * size)
        self._size[ids] = size
        self._group_size = int(size[-1])
        parts = [slice(None)] if np.unique(ids).size == ids.size else [slice(i, i + 1) for i in range(ids.size)]
        for sl in parts:  # pools by each problem's last group: forgetting / breakthrough counts
            self._pools.update(ids[sl], m1[sl], var[sl])
        self._last["informative_fraction"] = float(np.count_nonzero(var > 0.0)) / ids.size

    def metrics(self) -> dict:
        """Flat metrics (namespace them, e.g. ``sampler/``, when composing).

        Pools by each problem's last group (``unseen``, ``active``, ``solved``, ``unsolved``; nothing is
        parked by them), ``forgetting`` / ``breakthroughs`` (last observe and ``_total``), the completed
        passes (``epoch``), the last batch's mean priority against its candidates', its ``retested`` and
        ``skipped`` (candidates not selected) counts, and the ``informative_fraction`` of the last groups.
        """
        out = self._pools.metrics()
        out.update(self._last)
        out.update(epoch=self._pass.epoch, calls=self._calls)
        return out

    def state_dict(self) -> dict:
        """Everything needed to continue exactly: numpy arrays and JSON-able values, RNG included. O(M)."""
        return {
            "version": STATE_VERSION,
            "kind": "PrioritizedPassSampler",
            "num_problems": self.num_problems,
            "rng": self._rng.bit_generator.state,
            "calls": self._calls,
            "pass": self._pass.state_dict(),
            "recency_order": self._recency.order(),
            "succ": self._succ.copy(),
            "fail": self._fail.copy(),
            "at": self._at.copy(),
            "size": self._size.copy(),
            "group_size": self._group_size,
            "pools": self._pools.state_dict(),
            "last": dict(self._last),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore from :meth:`state_dict`. Raises ValueError for a state of another kind or size.

        The options (candidates, selection_exponent, floor, decay, retest_fraction) read no saved state
        and may differ from the saved sampler's.
        """
        required = ("kind", "num_problems", "rng", "calls", "pass", "recency_order", "succ", "fail", "at", "size",
                    "group_size", "pools", "last")  # fmt: skip
        missing = [k for k in required if k not in state]
        if missing:
            raise ValueError(f"sampler state is missing keys: {missing}")
        if state["kind"] != "PrioritizedPassSampler":
            raise ValueError(f"sampler state is of a {state['kind']}, this sampler is a PrioritizedPassSampler")
        M = self.num_problems
        if int(state["num_problems"]) != M:
            raise ValueError(f"sampler state is for {state['num_problems']} problems, this sampler has {M}")
        arrays = {
            "succ": np.asarray(state["succ"], dtype=np.float64),
            "fail": np.asarray(state["fail"], dtype=np.float64),
            "at": np.asarray(state["at"], dtype=np.int64),
            "size": np.asarray(state["size"], dtype=np.int64),
        }
        for name, arr in arrays.items():
            if arr.shape != (M,):
                raise ValueError(f"sampler state field {name!r} has shape {arr.shape}, expected ({M},)")
        self._pass.load_state_dict(state["pass"])
        self._recency.load_order(np.asarray(state["recency_order"], dtype=np.int64))
        self._pools.load_state_dict(state["pools"])
        self._rng.bit_generator.state = state["rng"]
        self._succ, self._fail, self._at = arrays["succ"].copy(), arrays["fail"].copy(), arrays["at"].copy()
        self._size = arrays["size"].copy()
        self._group_size = int(state["group_size"])
        self._calls = int(state["calls"])
        self._last = dict(state["last"])
        self._undo_forget()

    # ------------------------------------------------------------------ priorities and schedule
    def posterior(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Beta posterior ``(a, b)`` of each id's success rate, its evidence decayed to the current pass. O(k)."""
        ids = np.asarray(ids, dtype=np.int64)
        w = self.decay ** (self._pass.epoch - self._at[ids]).astype(np.float64) if self.decay < 1 else 1.0
        return PRIOR[0] + self._succ[ids] * w, PRIOR[1] + self._fail[ids] * w

    def priorities(self, ids: np.ndarray) -> np.ndarray:
        """Each id's priority in (0, 1]: the posterior probability that its next group is informative. O(k G)."""
        a, b = self.posterior(ids)
        ids = np.asarray(ids, dtype=np.int64)
        g = np.where(self._size[ids] > 0, self._size[ids], self._group_size)
        return informative_probability(a, b, g)

    def retest_slots(self, batch_size: int) -> int:
        """Retest slots per batch: ``ceil(retest_fraction * batch_size)``."""
        return math.ceil(self.retest_fraction * batch_size - 1e-9) if self.retest_fraction > 0 else 0

    def starvation_bound(self, batch_size: int) -> int | None:
        """Calls within which every problem is sampled, with a constant batch size: ``ceil(M / slots)``.

        None without retest slots (then every problem keeps a non-zero chance at each candidacy, once per pass,
        but there is no deterministic bound).
        """
        slots = self.retest_slots(check_batch_size(batch_size, self.num_problems))
        return math.ceil(self.num_problems / slots) if slots else None

    def _decay_to_now(self, ids: np.ndarray) -> None:
        if self.decay < 1:
            w = self.decay ** (self._pass.epoch - self._at[ids]).astype(np.float64)
            self._succ[ids] *= w
            self._fail[ids] *= w
        self._at[ids] = self._pass.epoch
