"""The parts a run config names, built: the problem sampler (``sampler.kind``) and the replay buffer
(``replay.kind``). Dynamic sampling, the third part, is a way of filling the batch and lives in the trainer's
step. Any object speaking the same protocol can stand in for either (see ``docs/sampler.md``, ``docs/replay.md``).
"""

from __future__ import annotations

from priorl.config import RunConfig
from priorl.replay import NaiveReplayBuffer, RolloutReplayBuffer
from priorl.sampling import PassSampler, PrioritizedSampler, UniformSampler


def build_sampler(config: RunConfig, num_problems: int, levels: list | None = None):
    """The sampler ``sampler.kind`` names: `UniformSampler`, `PassSampler` or `PrioritizedSampler` (heap).

    ``levels`` (one per problem, e.g. ``[p.level for p in problems]``) gives the beta estimator its
    per-level priors; None or all-None levels pool every problem.
    """
    kind = config.sampler.kind
    if kind == "uniform":
        return UniformSampler(num_problems, seed=config.seed)
    cls = PassSampler if kind == "pass" else PrioritizedSampler
    return cls(num_problems, seed=config.seed, levels=levels, **config.sampler.sampler_kwargs())


def build_replay(config: RunConfig):
    """The replay buffer ``replay.kind`` names (`RolloutReplayBuffer` for ``adv``, `NaiveReplayBuffer`), or None."""
    r = config.replay
    if r.kind == "adv":
        return RolloutReplayBuffer(
            tau_max=r.tau_max, replay_ratio=r.replay_ratio, alpha=r.priority_exponent, eps=r.eps,
            warmup_steps=r.warmup_steps, capacity=r.capacity, seed=config.seed,
        )  # fmt: skip
    if r.kind == "naive":
        return NaiveReplayBuffer(
            replay_ratio=r.replay_ratio, warmup_steps=r.warmup_steps, capacity=r.capacity, seed=config.seed
        )
    return None
