"""Speed of one replay step: the sum-tree buffer against a naive prioritized buffer, at several sizes.

One step is ``compose(fresh, step)`` with replay_ratio 0.5: age eviction, a prioritized draw of
``round(0.5 * fresh)`` distinct stored rollouts, then storing the fresh ones. The buffer is pre-filled
to ``n`` rollouts with ``capacity = n``, so every step stores ``fresh`` new rollouts and drops the
``fresh`` oldest for capacity: the stored count stays ``n``. Steps advance by one per call, and
``tau_max`` is large enough that no pre-filled rollout expires during the timed steps (the age check
still runs every step).

The naive baseline is the textbook way to get the same distribution: every step it scans all ``n``
stored rollouts for age, computes all ``n`` weights and calls numpy's weighted choice without
replacement. It stores into the same kind of preallocated arrays, so the difference measured is the
per-step O(n) work, not storage.
"""

from __future__ import annotations

import numpy as np

from priorl.bench.common import progress_bar, time_steps
from priorl.replay import AdvReplayBuffer
from priorl.types import Rollout, check_rollout

__all__ = ["NaivePrioritizedReplay", "run_replay_bench"]

_ALPHA = 0.5
_EPS = 1e-6
_RATIO = 0.5


class NaivePrioritizedReplay:
    """Prioritized, age-bounded replay done naively: O(n) numpy work per step. For benchmarks only."""

    def __init__(self, *, capacity: int, tau_max: int, replay_ratio: float, alpha: float, eps: float, seed: int):
        self.capacity = capacity
        self.tau_max = tau_max
        self.replay_ratio = replay_ratio
        self.alpha = alpha
        self.eps = eps
        self.rng = np.random.default_rng(seed)
        self.slots: list[Rollout | None] = [None] * capacity
        self.step = np.zeros(capacity, dtype=np.int64)
        self.advantage = np.zeros(capacity, dtype=np.float64)
        self.alive = np.zeros(capacity, dtype=bool)
        self.next = 0  # write position: the ring overwrites its oldest slot first

    def __len__(self) -> int:
        return int(self.alive.sum())

    def add(self, rollouts: list[Rollout]) -> None:
        for r in rollouts:
            check_rollout(r)  # the same per-rollout validation the real buffer does
        kept = [r for r in rollouts if r.advantage != 0.0]
        for r in kept:
            i = self.next
            self.slots[i] = r
            self.step[i] = r.step
            self.advantage[i] = r.advantage
            self.alive[i] = True
            self.next = (i + 1) % self.capacity

    def sample(self, k: int, step: int) -> list[Rollout]:
        expired = self.alive & (step - self.step > self.tau_max)  # scans all n
        for i in np.flatnonzero(expired):
            self.slots[i] = None
        self.alive &= ~expired
        w = np.where(self.alive, (np.abs(self.advantage) + self.eps) ** self.alpha, 0.0)  # all n weights
        k = min(k, int(np.count_nonzero(w)))
        if k == 0:
            return []
        picked = self.rng.choice(self.capacity, size=k, replace=False, p=w / w.sum())
        return [self.slots[i] for i in picked]

    def compose(self, fresh: list[Rollout], step: int) -> list[Rollout]:
        replayed = self.sample(round(self.replay_ratio * len(fresh)), step)
        self.add(fresh)
        return list(fresh) + replayed


def _rollouts(count: int, step: int, rng: np.random.Generator) -> list[Rollout]:
    """Cheap rollouts: tiny shared token lists, non-zero advantages of both signs."""
    prompt, completion, logprobs = [1, 2, 3], [4, 5], [-0.5, -1.5]
    advantage = rng.uniform(0.01, 1.0, count) * rng.choice([-1.0, 1.0], count)
    reward = (advantage > 0).astype(np.float64)
    return [
        Rollout(
            problem_id=i,
            prompt_ids=prompt,
            completion_ids=completion,
            behavior_logprobs=logprobs,
            reward=r,
            advantage=a,
            step=step,
        )
        for i, (r, a) in enumerate(zip(reward.tolist(), advantage.tolist(), strict=True))
    ]


def run_replay_bench(sizes: list[int], *, fresh: int, repeats: int, seed: int, progress: bool) -> list[dict]:
    """Median ms per ``compose`` step for each stored size: rows ``{impl, stored, fresh, step_ms}``.

    ``impl`` is ``"sumtree"`` (:class:`priorl.replay.AdvReplayBuffer`) or ``"naive"``
    (:class:`NaivePrioritizedReplay`). Both see identical rollouts.
    """
    rng = np.random.default_rng(seed)
    calls = repeats + 1  # time_steps runs one warm-up call first
    # Built once at the largest size; smaller sizes use a prefix. All born at step 0.
    prefill = _rollouts(max(sizes), 0, rng)
    batches = [_rollouts(fresh, s, rng) for s in range(1, calls + 1)]
    tau_max = calls + 1  # nothing pre-filled expires during the timed steps
    impls = {
        "sumtree": lambda n: AdvReplayBuffer(
            tau_max=tau_max,
            replay_ratio=_RATIO,
            priority_exponent=_ALPHA,
            eps=_EPS,
            warmup_steps=0,
            capacity=n,
            seed=seed,
        ),
        "naive": lambda n: NaivePrioritizedReplay(
            capacity=n, tau_max=tau_max, replay_ratio=_RATIO, alpha=_ALPHA, eps=_EPS, seed=seed
        ),
    }
    results = []
    with progress_bar(len(sizes) * len(impls), "replay bench", enabled=progress) as advance:
        for n in sizes:
            for name, make in impls.items():
                buffer = make(n)
                buffer.add(prefill[:n])
                step_iter = iter(range(calls))

                def one_step(buffer=buffer, step_iter=step_iter) -> None:
                    s = next(step_iter)
                    buffer.compose(batches[s], s + 1)

                ms = time_steps(one_step, repeats=repeats, warmup=1)
                if len(buffer) != n:
                    raise RuntimeError(f"{name}: stored count drifted to {len(buffer)} from {n}")
                results.append({"impl": name, "stored": n, "fresh": fresh, "step_ms": round(ms, 4)})
                advance(f"{name}, {n:,} stored: {ms:.2f} ms")
                del buffer
    return results
