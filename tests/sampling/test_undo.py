"""undo_mark / undo_to: a dropped step's calls are undone exactly, without a state_dict per step."""

import numpy as np
import pytest

from priorl.sampling import PrioritizedPassSampler, PrioritizedSampler, UniformSampler
from priorl.sampling import undo as undo_module
from priorl.sampling.experimental import ExperimentalPrioritizedSampler
from priorl.sampling.pools import Pools

M, B, G = 3000, 16, 8
LEVELS = np.random.default_rng(5).integers(0, 4, size=M)

KINDS = {
    "uniform": lambda: UniformSampler(M, seed=3),
    "pass": lambda: PrioritizedPassSampler(M, seed=3, retest_fraction=0.25),
    "heap": lambda: PrioritizedSampler(M, seed=3, retest_fraction=0.1),
    "heap-stochastic": lambda: ExperimentalPrioritizedSampler(M, seed=3, selection="stochastic"),
    "heap-ema": lambda: ExperimentalPrioritizedSampler(M, seed=3, estimator="ema", min_priority=0.01),
    "heap-window": lambda: ExperimentalPrioritizedSampler(M, seed=3, estimator="window"),
    "beta": lambda: ExperimentalPrioritizedSampler(M, seed=3, estimator="beta", levels=LEVELS, retest_fraction=0.1),
    "thompson": lambda: ExperimentalPrioritizedSampler(
        M, seed=3, estimator="beta", selection="thompson", levels=LEVELS
    ),
}


class Abort(BaseException):
    """What a signal raises inside a dropped step (the trainer's AbortStep)."""


def same_state(a, b, path="state"):
    assert type(a) is type(b) or not isinstance(a, (dict, list, np.ndarray)), path
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            same_state(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and np.array_equal(a, b), path
    else:
        assert a == b, path


def rewards_for(ids, rng):
    p = (np.asarray(ids) % 7) / 6.0
    return (rng.random((len(ids), G)) < p[:, None]).astype(np.float64)


def dynamic_step(sampler, rng, rounds=2):
    """What a dynamic-sampling step does before its update: rounds of sample then observe."""
    for _ in range(rounds):
        ids = sampler.sample(B)
        sampler.observe(ids, rewards_for(ids, rng))


@pytest.mark.parametrize("kind", list(KINDS))
def test_undo_restores_the_marked_state_exactly_and_the_run_goes_on_as_if_never_dropped(kind, monkeypatch):
    sampler, reference = KINDS[kind](), KINDS[kind]()
    snapshots = []
    full_state = sampler.state_dict
    monkeypatch.setattr(sampler, "state_dict", lambda: snapshots.append(1) or full_state())
    rng_s, rng_r = np.random.default_rng(0), np.random.default_rng(0)
    for t in range(40):
        mark = sampler.undo_mark()
        if t % 3 == 2:  # dropped: some calls complete, then one is cut short half way through its changes
            expected = full_state()
            state_rng = rng_s.bit_generator.state
            dynamic_step(sampler, rng_s, rounds=1 + t % 2)
            update = Pools.update

            def cut_short(self, *args, update=update, **kwargs):
                update(self, *args, **kwargs)
                raise Abort

            monkeypatch.setattr(Pools, "update", cut_short)
            with pytest.raises(Abort):
                ids = sampler.sample(B)
                sampler.observe(ids, rewards_for(ids, rng_s))
            monkeypatch.setattr(Pools, "update", update)
            sampler.undo_to(mark)
            same_state(full_state(), expected)
            rng_s.bit_generator.state = state_rng  # the trainer restores its RNGs likewise
        else:
            dynamic_step(sampler, rng_s)
            dynamic_step(reference, rng_r)
            assert sampler.metrics() == reference.metrics()
    assert len(snapshots) == 1  # the first mark's base; no O(M) snapshot per step
    same_state(full_state(), reference.state_dict())
    for _ in range(5):
        assert sampler.sample(B) == reference.sample(B)


@pytest.mark.parametrize("kind", ["pass", "heap", "thompson"])
def test_a_long_log_is_rebased_at_the_next_mark_and_older_marks_are_refused(kind, monkeypatch):
    monkeypatch.setattr(undo_module, "_MIN_REBASE", 100)
    sampler, reference = KINDS[kind](), KINDS[kind]()
    assert sampler.rebase_after == max(100, M // 2)
    monkeypatch.setattr(type(sampler), "rebase_after", property(lambda self: 100))
    rng_s, rng_r = np.random.default_rng(1), np.random.default_rng(1)
    marks = []
    for _ in range(12):
        marks.append(sampler.undo_mark())
        dynamic_step(sampler, rng_s)
        dynamic_step(reference, rng_r)
    assert len({epoch for epoch, _ in marks}) == 6  # 4 x 16 problems logged a step: a new base every 2 marks
    expected = sampler.state_dict()
    mark = sampler.undo_mark()
    dynamic_step(sampler, rng_s)
    sampler.undo_to(mark)
    same_state(sampler.state_dict(), expected)
    same_state(sampler.state_dict(), reference.state_dict())
    with pytest.raises(ValueError, match="not from this sampler's current undo log"):
        sampler.undo_to(marks[0])


def test_load_state_dict_forgets_the_log():
    sampler = KINDS["heap"]()
    state = sampler.state_dict()
    mark = sampler.undo_mark()
    sampler.sample(B)
    sampler.load_state_dict(state)
    with pytest.raises(ValueError, match="not from this sampler's current undo log"):
        sampler.undo_to(mark)
    mark = sampler.undo_mark()  # a new base
    sampler.sample(B)
    sampler.undo_to(mark)
    same_state(sampler.state_dict(), state)


def test_unmarked_samplers_log_nothing():
    sampler = KINDS["pass"]()
    dynamic_step(sampler, np.random.default_rng(0), rounds=3)
    assert sampler._undo_base is None and len(sampler._undo_calls) == 0
