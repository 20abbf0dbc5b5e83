"""Rollout replay buffers: a ring of slots, a removal rule, a selector, and the fresh/replay schedule.

:class:`ReplayBuffer` composes the parts (Reverb-Table style); the two public buffers are its two
configurations:

- :class:`AdvReplayBuffer` (advantage-prioritized replay, Yoo et al. 2026): P(i) ∝
  (|A_i| + eps)^priority_exponent via a sum-tree, rollouts older than ``tau_max`` steps removed before every draw.
- :class:`NaiveReplayBuffer` (the paper's baseline): uniform over stored rollouts, no age bound.

Both keep only rollouts with a non-zero advantage (a zero-advantage rollout carries no gradient, so
replaying it only dilutes the batch) and drop their oldest rollouts first when full. The test is
exact (``advantage != 0.0``): advantages of a zero-variance group must come out as exact zeros.

Both store :class:`~priorl.types.Rollout` records by default; an engine adapter with richer rows passes
its own ``codec`` (:class:`~priorl.replay.state.RecordCodec`) and gets the same semantics for them.

Per step the cost is O((m + k) log n) for ``m`` fresh and ``k`` replayed rollouts out of ``n``
stored, plus amortized O(1) per rollout for age eviction: rollouts are stored in birth order, so the
expired ones are always a prefix of the ring, found by binary search and freed as one slice.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from pydantic import Field

from priorl.options import PartOptions
from priorl.replay.removal import KeepAll, MaxAge, RemovalRule
from priorl.replay.ring import SlotRing
from priorl.replay.selectors import PrioritySelector, Selector, UniformSelector
from priorl.replay.state import ROLLOUT_CODEC, RecordCodec
from priorl.types import Rollout

__all__ = ["NaiveReplayBuffer", "ReplayBuffer", "AdvReplayBuffer"]

STATE_FORMAT = "priorl.replay/1"
_STATE_KEYS = (
    "format",
    "selector",
    "capacity",
    "head",
    "last_step",
    "newest_step",
    "counters",
    "last_draw",
    "rng",
    "rollouts",
)
_COUNTERS = ("added", "skipped_zero_advantage", "evicted_age", "evicted_capacity")


def _int_arg(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _float_arg(name: str, value: Any, *, positive: bool = False) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(x) or x < 0 or (positive and x == 0):
        raise ValueError(f"{name} must be a finite number {'>' if positive else '>='} 0, got {value!r}")
    return x


class ReplayBuffer:
    """A replay buffer composed of a slot ring (capacity), a removal rule (age) and a selector.

    Protocol: :meth:`compose` (the per-step call), :meth:`sample`, :meth:`add` (alias
    :meth:`observe`), :meth:`state_dict`, :meth:`load_state_dict`, :meth:`metrics`.

    Steps must never go backwards: a ``sample``/``compose`` step below the last one seen, or an added
    rollout born before the newest one added, raises ``ValueError`` (birth order is what makes age
    eviction O(log n)). The selector must be built for the same ``capacity`` (its slots are the ring's).

    Returned rollouts are the stored objects, not copies: treat them as read-only (the buffer only
    ever increments ``times_replayed``).

    ``codec`` says what a stored record is (default: :class:`~priorl.types.Rollout`); see
    :class:`~priorl.replay.state.RecordCodec`.
    """

    def __init__(
        self,
        selector: Selector,
        removal: RemovalRule,
        *,
        capacity: int,
        replay_ratio: float,
        warmup_steps: int,
        seed: int,
        codec: RecordCodec | None = None,
    ) -> None:
        self.codec = ROLLOUT_CODEC if codec is None else codec
        self.capacity = _int_arg("capacity", capacity, 1)
        self.replay_ratio = _float_arg("replay_ratio", replay_ratio)
        self.warmup_steps = _int_arg("warmup_steps", warmup_steps, 0)
        self.seed = _int_arg("seed", seed, 0)
        self.selector = selector
        self.removal = removal
        self._ring = SlotRing(self.capacity)
        self._rng = np.random.default_rng(self.seed)
        self._last_step = -1  # last sample/compose step; -1 = none yet
        self._newest_step = -1  # newest birth step ever added; -1 = none yet
        self._counters = dict.fromkeys(_COUNTERS, 0)
        self._last_draw = {"replayed": 0, "mean_age": 0.0, "mean_abs_advantage": 0.0}

    # ------------------------------------------------------------------ protocol
    def __len__(self) -> int:
        """Number of stored rollouts. O(1)."""
        return self._ring.size

    def add(self, rollouts: Iterable[Rollout]) -> None:
        """Store the rollouts with a non-zero advantage, oldest dropped first when full. O(m log n).

        Rollouts must come in birth order: each one's step must be >= the newest step added so far.
        The whole batch is validated before anything is stored.
        """
        batch = list(rollouts)
        self._check_batch(batch)
        self._store(batch)

    def sample(self, n: int, step: int) -> list[Rollout]:
        """Drop expired rollouts, then draw up to ``n`` distinct stored ones (drawing removes nothing).

        O(n log N + e) expected for ``N`` stored and ``e`` expired rollouts (each rollout expires once,
        so ``e`` is amortized O(1) per stored rollout). Returns fewer than ``n`` only when fewer are
        stored. Each drawn rollout's ``times_replayed`` is incremented.
        """
        n = _int_arg("n", n, 0)
        return self._sample(n, self._check_step(step))

    def expire(self, step: int) -> int:
        """Drop the rollouts expired at ``step`` and return how many stay (what a draw can pick from).

        The same age eviction :meth:`sample` does first, for a caller that must know the count before it
        draws (e.g. to round a draw to whole mini-batches). Amortized O(1) per evicted rollout.
        """
        step = self._check_step(step)
        self._last_step = step
        self._evict(step)
        return self._ring.size

    def compose(self, fresh: Iterable[Rollout], step: int) -> list[Rollout]:
        """The training batch of ``step``: all ``fresh`` rollouts in order, then replayed ones.

        Replays ``round(replay_ratio * len(fresh))`` rollouts (Python's round: halves go to even) once
        ``step >= warmup_steps``, drawn before the fresh ones are stored (so a fresh rollout is never
        also a replay of itself); then stores the fresh ones. O((m + k) log n) for ``m`` fresh and
        ``k`` replayed rollouts, plus amortized age eviction.
        """
        batch = list(fresh)
        step = self._check_step(step)
        self._check_batch(batch)  # before any change, so a bad batch leaves the buffer untouched
        replayed = self._sample(round(self.replay_ratio * len(batch)) if step >= self.warmup_steps else 0, step)
        self._store(batch)
        return batch + replayed

    def stored(self) -> list[Rollout]:
        """The stored rollouts, oldest first. O(n): for inspection and tests, not the hot path."""
        return [self._ring.slots[int(s)] for s in self._ring.occupied()]

    def metrics(self) -> dict[str, float]:
        """Flat metrics with relative keys (the caller adds a ``replay/`` prefix). O(1).

        ``size``; cumulative ``added``, ``skipped_zero_advantage``, ``evicted_age``,
        ``evicted_capacity``; and for the last draw ``replayed`` (count), ``replayed_mean_age``
        (steps) and ``replayed_mean_abs_advantage`` (both 0.0 when nothing was replayed).
        """
        return {
            "size": float(self._ring.size),
            **{key: float(value) for key, value in self._counters.items()},
            "replayed": float(self._last_draw["replayed"]),
            "replayed_mean_age": float(self._last_draw["mean_age"]),
            "replayed_mean_abs_advantage": float(self._last_draw["mean_abs_advantage"]),
        }

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume with identical future draws, RNG included. O(stored tokens).

        Plain dicts of ints, floats, strings and numpy arrays (no pickle): arrays go to safetensors,
        the rest to JSON. Rollouts are stored oldest first; ``head`` fixes where they sit in the ring,
        which the draws depend on.
        """
        return {
            "format": STATE_FORMAT,
            "selector": self.selector.name,
            "capacity": self.capacity,
            "head": self._ring.head,
            "last_step": self._last_step,
            "newest_step": self._newest_step,
            "counters": dict(self._counters),
            "last_draw": dict(self._last_draw),
            "rng": self._rng.bit_generator.state,
            "records": self.codec.name,
            "rollouts": self.codec.to_columns(self.stored()),
            # For the reader only: the loading buffer's own settings apply.
            "config": self._config(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` (or its JSON form, arrays as lists). O(stored tokens + n).

        Validates everything before changing anything: raises ``ValueError`` naming a missing key, a
        different capacity, selector or record kind, or malformed rollouts. (States written before the
        ``records`` key existed hold Rollouts.) Restored token fields are numpy
        arrays (ids int64, log-probs float64), with the same values.
        """
        for key in _STATE_KEYS:
            if key not in state:
                raise ValueError(f"replay state is missing the key {key!r}")
        if state["format"] != STATE_FORMAT:
            raise ValueError(f"replay state has format {state['format']!r}, expected {STATE_FORMAT!r}")
        if state["selector"] != self.selector.name:
            raise ValueError(
                f"replay state comes from a {state['selector']!r} buffer, this one is {self.selector.name!r}"
            )
        records = state.get("records", ROLLOUT_CODEC.name)
        if records != self.codec.name:
            raise ValueError(f"replay state holds {records!r} records, this buffer stores {self.codec.name!r} records")
        if int(state["capacity"]) != self.capacity:
            raise ValueError(f"replay state has capacity {state['capacity']}, this buffer has capacity {self.capacity}")
        head = int(state["head"])
        if not 0 <= head < self.capacity:
            raise ValueError(f"replay state head {head} is out of range [0, {self.capacity})")
        for key in _COUNTERS:
            if key not in state["counters"]:
                raise ValueError(f"replay state counters are missing the key {key!r}")
        for key in ("replayed", "mean_age", "mean_abs_advantage"):
            if key not in state["last_draw"]:
                raise ValueError(f"replay state last_draw is missing the key {key!r}")

        rollouts = self.codec.from_columns(state["rollouts"])
        if len(rollouts) > self.capacity:
            raise ValueError(f"replay state holds {len(rollouts)} rollouts, more than capacity {self.capacity}")
        for r in rollouts:
            self.codec.check(r)
            if r.advantage == 0.0:
                raise ValueError(f"replay state holds a rollout of problem {r.problem_id} with advantage 0")
        steps = np.array([r.step for r in rollouts], dtype=np.int64)
        if np.any(np.diff(steps) < 0):
            raise ValueError("replay state rollouts are not in birth order (steps must be non-decreasing)")
        newest = int(state["newest_step"])
        if steps.size and steps[-1] > newest:
            raise ValueError(f"replay state newest_step {newest} is older than a stored rollout ({steps[-1]})")
        rng = np.random.default_rng()
        try:
            rng.bit_generator.state = dict(state["rng"])
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"replay state has an unusable rng state: {exc}") from None

        ring = SlotRing(self.capacity)
        ring.head = head
        ring.push(rollouts)
        self.selector.rebuild(ring)
        self._ring = ring
        self._rng = rng
        self._last_step = int(state["last_step"])
        self._newest_step = newest
        self._counters = {key: int(state["counters"][key]) for key in _COUNTERS}
        self._last_draw = {
            "replayed": int(state["last_draw"]["replayed"]),
            "mean_age": float(state["last_draw"]["mean_age"]),
            "mean_abs_advantage": float(state["last_draw"]["mean_abs_advantage"]),
        }

    # ------------------------------------------------------------------ internals
    def _config(self) -> dict[str, Any]:
        return {
            "capacity": self.capacity,
            "replay_ratio": self.replay_ratio,
            "warmup_steps": self.warmup_steps,
            "seed": self.seed,
        }

    def _check_step(self, step: Any) -> int:
        step = _int_arg("step", step, 0)
        if step < self._last_step:
            raise ValueError(f"step {step} goes backwards: the buffer has already seen step {self._last_step}")
        return step

    def _check_batch(self, batch: list[Rollout]) -> None:
        """Validate rollouts and their birth order without changing anything. O(m)."""
        newest = self._newest_step
        for r in batch:
            self.codec.check(r)
            if r.step < newest:
                raise ValueError(
                    f"rollout of problem {r.problem_id} was born at step {r.step}, before step {newest} "
                    "of a rollout already added (rollouts must be added in birth order)"
                )
            newest = r.step

    def _store(self, batch: list[Rollout]) -> None:
        """Store an already validated batch. O(m log n)."""
        if batch:
            self._newest_step = int(batch[-1].step)
        kept = [r for r in batch if r.advantage != 0.0]
        self._counters["added"] += len(kept)
        self._counters["skipped_zero_advantage"] += len(batch) - len(kept)
        if not kept:
            return
        written, dropped = self._ring.push(kept)
        # Slots freed for capacity are exactly the ones being overwritten, so filling the written
        # slots is the only selector update needed.
        self.selector.fill(written, self._ring.advantage[written])
        self._counters["evicted_capacity"] += dropped

    def _evict(self, step: int) -> None:
        """Drop the rollouts the removal rule expires at ``step`` (a prefix of the ring)."""
        expired = self.removal.expired(self._ring, step)
        if expired:
            self.selector.free(self._ring.drop_oldest(expired))
            self._counters["evicted_age"] += expired

    def _sample(self, n: int, step: int) -> list[Rollout]:
        """Evict expired rollouts at ``step``, then draw ``n`` (step already validated)."""
        self._last_step = step
        self._evict(step)
        slots = self.selector.select(n, self._ring, self._rng) if n else np.zeros(0, dtype=np.int64)
        drawn = [self._ring.slots[int(s)] for s in slots]
        for r in drawn:
            r.times_replayed += 1
        if drawn:
            self._last_draw = {
                "replayed": len(drawn),
                "mean_age": float(np.mean(step - self._ring.step[slots])),
                "mean_abs_advantage": float(np.mean(np.abs(self._ring.advantage[slots]))),
            }
        else:
            self._last_draw = {"replayed": 0, "mean_age": 0.0, "mean_abs_advantage": 0.0}
        return drawn


class NaiveReplayOptions(PartOptions):
    """What a config may set on :class:`NaiveReplayBuffer` (``replay.kind: naive-replay``)."""

    replay_ratio: float = Field(
        0.5, ge=0, description="replayed rollouts per fresh rollout: round(replay_ratio * fresh) a step"
    )
    warmup_steps: int = Field(20, ge=0, description="no replay before this step (the buffer fills meanwhile)")
    capacity: int = Field(30000, ge=1, description="rollouts stored at most (the oldest dropped first)")


class AdvReplayOptions(NaiveReplayOptions):
    """What a config may set on :class:`AdvReplayBuffer` (``replay.kind: adv-replay``)."""

    tau_max: int = Field(10, ge=0, description="steps: a rollout older than this is evicted")
    priority_exponent: float = Field(0.5, ge=0, description="P(rollout) ∝ (|advantage| + eps)^priority_exponent")
    eps: float = Field(1e-6, gt=0, description="added to |advantage|, so every stored rollout can be drawn")


class AdvReplayBuffer(ReplayBuffer):
    """Advantage-prioritized, age-bounded rollout replay (Yoo et al., 2026).

    Stores rollouts with a non-zero advantage; before every draw removes those with
    ``step - rollout.step > tau_max``; draws distinct rollouts with P ∝ (|advantage| + eps) **
    priority_exponent from a sum-tree; ``compose`` appends ``round(replay_ratio * len(fresh))`` of them to every
    fresh batch once ``step >= warmup_steps``. ``capacity`` is a backstop (oldest dropped first).

    ``eps`` must be > 0, so every stored rollout keeps a positive chance; ``priority_exponent = 0`` is uniform.
    """

    def __init__(
        self,
        *,
        tau_max: int = 10,
        replay_ratio: float = 0.5,
        priority_exponent: float = 0.5,
        eps: float = 1e-6,
        warmup_steps: int = 20,
        capacity: int = 30000,
        seed: int = 0,
        codec: RecordCodec | None = None,
    ) -> None:
        self.tau_max = _int_arg("tau_max", tau_max, 0)
        self.priority_exponent = _float_arg("priority_exponent", priority_exponent)
        self.eps = _float_arg("eps", eps, positive=True)
        capacity = _int_arg("capacity", capacity, 1)
        super().__init__(
            PrioritySelector(capacity, priority_exponent=self.priority_exponent, eps=self.eps),
            MaxAge(self.tau_max),
            capacity=capacity,
            replay_ratio=replay_ratio,
            warmup_steps=warmup_steps,
            seed=seed,
            codec=codec,
        )

    def _config(self) -> dict[str, Any]:
        return {
            **super()._config(),
            "tau_max": self.tau_max,
            "priority_exponent": self.priority_exponent,
            "eps": self.eps,
        }

    def __repr__(self) -> str:
        return (
            f"AdvReplayBuffer(tau_max={self.tau_max}, replay_ratio={self.replay_ratio}, "
            f"priority_exponent={self.priority_exponent}, eps={self.eps}, warmup_steps={self.warmup_steps}, "
            f"capacity={self.capacity}, seed={self.seed})"
        )


class NaiveReplayBuffer(ReplayBuffer):
    """Naive replay, the paper's baseline: uniform over stored rollouts, no age bound, no priority.

    Same interface and schedule as :class:`AdvReplayBuffer`. Like it, it stores only rollouts
    with a non-zero advantage (so the comparison isolates priority and age), and drops its oldest
    rollouts first when full.
    """

    tau_max = None

    def __init__(
        self,
        *,
        replay_ratio: float = 0.5,
        warmup_steps: int = 20,
        capacity: int = 30000,
        seed: int = 0,
        codec: RecordCodec | None = None,
    ) -> None:
        super().__init__(
            UniformSelector(),
            KeepAll(),
            capacity=capacity,
            replay_ratio=replay_ratio,
            warmup_steps=warmup_steps,
            seed=seed,
            codec=codec,
        )

    def __repr__(self) -> str:
        return (
            f"NaiveReplayBuffer(replay_ratio={self.replay_ratio}, warmup_steps={self.warmup_steps}, "
            f"capacity={self.capacity}, seed={self.seed})"
        )
