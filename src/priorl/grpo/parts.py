"""The parts a run config names, built: the problem sampler (``sampler.kind``) and the replay buffer
(``replay.kind``). Dynamic sampling, the third part, is a way of filling the batch and lives in the trainer's
step. Any object speaking the same protocol can stand in for either (see ``docs/sampler.md``, ``docs/replay.md``).
"""

from __future__ import annotations

import math

from priorl import registry
from priorl.config import RunConfig


def build_sampler(config: RunConfig, num_problems: int, levels: list | None = None):
    """The sampler ``sampler.kind`` names (:data:`priorl.registry.SAMPLERS`), with the section's options.

    ``levels`` (one per problem, e.g. ``[p.level for p in problems]``) goes to a sampler that takes it (the beta
    estimator's per-level priors); None or all-None levels pool every problem.
    """
    entry = registry.part("sampler", config.sampler.kind)
    return entry.build(config.sampler.options(), num_problems=num_problems, seed=config.seed, levels=levels)


def build_replay(config: RunConfig):
    """The replay buffer ``replay.kind`` names (:data:`priorl.registry.REPLAYS`), or None for ``none``."""
    if config.replay.kind == registry.NO_REPLAY:
        return None
    return registry.part("replay", config.replay.kind).build(config.replay.options(), seed=config.seed)


def idle_parts(config: RunConfig, steps: int, num_problems: int, *, parts_only: bool = False) -> list[str]:
    """Why a part the config turns on cannot act within a run of ``steps`` training steps on ``num_problems``
    problems, one sentence each (empty when every part can act). The trainer warns with these at the start.

    Checked: replay that starts at or after the last step (``replay.warmup_steps``; the buffer is empty at
    step 1), never draws (``replay_ratio`` 0) or keeps nothing replayable (``tau_max`` 0); a prioritized-pass
    sampler whose candidates within the run are all unseen (no revisits: it selects as uniform does); a heap
    (``prioritized``) sampler whose batches are all first visits (it takes never-sampled problems first, so its
    priorities never choose) or whose whole-batch retest (``retest_every``) comes after the run's last sampler
    call; a learning-rate warm-up as long as the run (left out with ``parts_only``: it is not a part, and applies
    to every preset alike).
    """
    out: list[str] = []
    if steps <= 0:
        return out
    r, s, t = config.replay, config.sampler, config.train
    run = f"this run's {steps} step{'s' if steps != 1 else ''}"
    if r.kind != "none":
        if r.replay_ratio == 0:
            out.append(f"replay.kind is {r.kind!r} but replay.replay_ratio is 0: nothing is ever replayed")
        elif r.kind == "adv-replay" and r.tau_max == 0:
            out.append("replay.tau_max is 0: a stored rollout is too old by the next step, so nothing is ever replayed")
        else:
            first = max(r.warmup_steps, 2)  # the buffer is empty at step 1
            if first >= steps:
                when = "nothing is ever replayed" if first > steps else f"replay acts only at the last step ({steps})"
                per_step = t.batch_size * config.generation.group_size
                longer = (
                    f"a budget above {first * per_step:,} completions ({first} steps of {per_step:,})"
                    if t.max_rollouts is not None and not config.dynamic_sampling.enabled
                    else f"more than {first} steps"
                )
                out.append(
                    f"replay.warmup_steps is {r.warmup_steps} for {run}: {when}, so the run trains on "
                    f"fresh rollouts{' only' if first > steps else ' until then'} (lower replay.warmup_steps, or "
                    f"train longer: {longer})"
                )
    d = config.dynamic_sampling
    rounds = d.max_rounds if d.enabled else 1
    calls = steps * rounds  # at most this many sampler calls
    per_call = d.step_shape(t.batch_size)[1] if d.enabled else t.batch_size
    candidates = calls * math.ceil(s.candidates * per_call) if s.kind == "prioritized-pass" else 0
    if s.kind == "prioritized-pass" and candidates <= num_problems:
        out.append(
            f"sampler.kind 'prioritized-pass' ranks each problem by its earlier groups, and {run} take at most "
            f"{candidates:,} candidates of the {num_problems:,} problems from one shuffled pass: every candidate is "
            "unseen, with the same prior, so it selects as uniform sampling does (fewer problems, e.g. a smaller "
            "data.train, or a longer run gives it revisits to learn from)"
        )
    if s.kind in ("prioritized", "experimental-prioritized"):  # the heap; with a Beta prior unseen problems compete
        unseen_first = s.kind == "prioritized" or s.estimator != "beta"
        if unseen_first and calls * per_call <= num_problems:
            out.append(
                f"sampler.kind {s.kind!r} takes never-sampled problems first, and {run} draw at most "
                f"{calls * per_call:,} of the {num_problems:,} problems: every batch is first visits, so the "
                "priorities never choose a problem (the run samples as uniform without replacement does)"
            )
        elif s.retest_every is not None and s.retest_every > calls:
            out.append(
                f"sampler.retest_every is {s.retest_every}, more than the {calls} sampler call"
                f"{'s' if calls != 1 else ''} of {run}: no whole-batch retest happens"
            )
    if t.lr_warmup_steps > steps and not parts_only:
        out.append(
            f"train.lr_warmup_steps is {t.lr_warmup_steps}, longer than {run}: the learning rate never reaches "
            f"train.lr ({t.lr:g}; at most {t.lr * steps / t.lr_warmup_steps:.3g})"
        )
    return out
