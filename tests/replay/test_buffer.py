"""AdvReplayBuffer and NaiveReplayBuffer: behaviour, metrics and bad input, one case at a time."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from replay_helpers import batch, rollout

from priorl.replay import AdvReplayBuffer, NaiveReplayBuffer
from priorl.types import Rollout

BUFFERS = [AdvReplayBuffer, NaiveReplayBuffer]


# ---------------------------------------------------------------------------------------- Rollout
def test_rollout_keyword_construction_with_exactly_the_spec_fields():
    r = Rollout(
        problem_id=3,
        prompt_ids=[1, 2],
        completion_ids=np.array([3, 4, 5]),
        behavior_logprobs=np.array([-0.1, -0.2, -0.3], dtype=np.float32),
        reward=1.0,
        advantage=0.25,
        step=7,
    )
    assert r.times_replayed == 0
    assert {f.name for f in dataclasses.fields(r)} >= {
        "problem_id",
        "prompt_ids",
        "completion_ids",
        "behavior_logprobs",
        "reward",
        "advantage",
        "step",
    }
    assert r != rollout()  # identity semantics: equal-looking rollouts are distinct events


# ---------------------------------------------------------------------------------------- storing
@pytest.mark.parametrize("cls", BUFFERS)
def test_add_stores_only_non_zero_advantages(cls):
    buf = cls(capacity=10)
    fresh = batch([0.5, 0.0, -0.25, 0.0, 1.0], step=0)
    buf.add(fresh)
    assert buf.stored() == [fresh[0], fresh[2], fresh[4]]
    m = buf.metrics()
    assert (m["size"], m["added"], m["skipped_zero_advantage"]) == (3, 3, 2)


@pytest.mark.parametrize("cls", BUFFERS)
def test_full_buffer_drops_its_oldest_first(cls):
    buf = cls(capacity=3)
    first = batch([0.1, 0.2], step=0)
    second = batch([0.3, 0.4], step=1, start_id=2)
    buf.add(first)
    buf.add(second)
    assert buf.stored() == [first[1], *second]
    third = batch([0.5, 0.6, 0.7, 0.8], step=2, start_id=4)  # larger than the capacity
    buf.add(third)
    assert buf.stored() == third[1:]
    assert buf.metrics()["evicted_capacity"] == 1 + 4
    assert buf.metrics()["evicted_age"] == 0


def test_the_buffer_has_one_name_for_adding():
    buf = AdvReplayBuffer()
    fresh = batch([0.5, 0.0], step=0)
    buf.add(fresh)
    assert buf.stored() == [fresh[0]]
    assert not hasattr(buf, "observe")  # the alias is gone: a sampler observes rewards, a buffer adds rollouts


# ---------------------------------------------------------------------------------------- sampling
def test_sample_removes_rollouts_older_than_tau_max_first():
    buf = AdvReplayBuffer(tau_max=2, capacity=100)
    by_step = {s: batch([0.5] * 3, step=s, start_id=10 * s) for s in range(4)}
    for s in range(4):
        buf.add(by_step[s])
    drawn = buf.sample(100, step=4)
    # 4 - 1 = 3 > 2: steps 0 and 1 are gone; 4 - 2 = 2 is still allowed.
    assert {r.step for r in drawn} == {2, 3}
    assert len(drawn) == 6
    assert buf.stored() == by_step[2] + by_step[3]
    assert buf.metrics()["evicted_age"] == 6


def test_tau_max_zero_replays_only_rollouts_of_the_current_step():
    buf = AdvReplayBuffer(tau_max=0)
    buf.add(batch([0.5, 0.5], step=0))
    buf.add(batch([0.5], step=1, start_id=2))
    assert [r.problem_id for r in buf.sample(5, step=1)] == [2]


def test_sample_does_not_remove_and_counts_replays():
    buf = AdvReplayBuffer()
    fresh = batch([0.5, -0.5, 0.25], step=0)
    buf.add(fresh)
    for _ in range(4):
        drawn = buf.sample(3, step=1)
        assert sorted(r.problem_id for r in drawn) == [0, 1, 2]
    assert len(buf) == 3
    assert [r.times_replayed for r in fresh] == [4, 4, 4]


def test_sample_returns_at_most_what_is_stored():
    buf = AdvReplayBuffer()
    assert buf.sample(5, step=0) == []
    buf.add(batch([0.5, 0.5], step=0))
    assert len(buf.sample(5, step=0)) == 2
    assert buf.sample(0, step=0) == []


def test_naive_buffer_keeps_old_rollouts():
    buf = NaiveReplayBuffer(capacity=100)
    buf.add(batch([0.5], step=0))
    drawn = buf.sample(1, step=1000)
    assert [r.step for r in drawn] == [0]
    assert buf.metrics()["evicted_age"] == 0
    assert buf.tau_max is None


def test_same_seed_same_draws_different_seed_different_draws():
    def draws(seed):
        buf = AdvReplayBuffer(seed=seed, capacity=1000)
        buf.add(batch(np.linspace(0.1, 1.0, 500).tolist(), step=0))
        return [r.problem_id for r in buf.sample(20, step=0)]

    assert draws(1) == draws(1)
    assert draws(1) != draws(2)


# ---------------------------------------------------------------------------------------- compose
@pytest.mark.parametrize("cls", BUFFERS)
def test_compose_puts_all_fresh_first_then_replays(cls):
    buf = cls(warmup_steps=1, replay_ratio=0.5)
    first = batch([0.5, -0.5, 0.25, 0.0], step=0)
    out0 = buf.compose(first, step=0)
    assert out0 == first  # warm-up: no replay, zero-advantage ones still trained on
    fresh = batch([0.5, -0.5, 0.25, 0.75], step=1, start_id=4)
    out1 = buf.compose(fresh, step=1)
    assert out1[:4] == fresh
    replayed = out1[4:]
    assert len(replayed) == 2
    assert all(r in first[:3] for r in replayed)  # from the buffer, never the fresh ones of this step
    assert len(buf) == 7


@pytest.mark.parametrize(("n_fresh", "ratio", "expected"), [(5, 0.5, 2), (7, 0.5, 4), (4, 0.0, 0), (3, 2.0, 6)])
def test_compose_replays_round_of_ratio_times_fresh(n_fresh, ratio, expected):
    buf = AdvReplayBuffer(warmup_steps=0, replay_ratio=ratio, capacity=100)
    buf.add(batch([0.5] * 20, step=0, start_id=100))
    out = buf.compose(batch([0.5] * n_fresh, step=1), step=1)
    assert len(out) == n_fresh + expected == n_fresh + round(ratio * n_fresh)


def test_compose_warmup_boundary():
    buf = AdvReplayBuffer(warmup_steps=3, capacity=100)
    for s in range(3):
        assert len(buf.compose(batch([0.5] * 4, step=s, start_id=4 * s), step=s)) == 4
    assert len(buf.compose(batch([0.5] * 4, step=3, start_id=12), step=3)) == 6


# ---------------------------------------------------------------------------------------- metrics
def test_metrics_are_flat_relative_and_describe_the_last_draw():
    buf = AdvReplayBuffer(tau_max=5, capacity=100)
    buf.add([rollout(-0.5, step=2, problem_id=1)])
    assert buf.metrics()["replayed"] == 0
    buf.sample(1, step=5)
    m = buf.metrics()
    assert set(m) == {
        "size",
        "added",
        "skipped_zero_advantage",
        "evicted_age",
        "evicted_capacity",
        "replayed",
        "replayed_mean_age",
        "replayed_mean_abs_advantage",
    }
    assert all(isinstance(v, float) and "/" not in k for k, v in m.items())
    assert m["replayed"] == 1
    assert m["replayed_mean_age"] == 3.0
    assert m["replayed_mean_abs_advantage"] == 0.5
    buf.sample(0, step=5)
    assert buf.metrics()["replayed"] == 0
    assert buf.metrics()["replayed_mean_age"] == 0.0


# ---------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tau_max": -1}, "tau_max.*-1"),
        ({"tau_max": 1.5}, "tau_max.*1.5"),
        ({"replay_ratio": -0.1}, "replay_ratio.*-0.1"),
        ({"replay_ratio": float("nan")}, "replay_ratio.*nan"),
        ({"priority_exponent": -1.0}, "priority_exponent.*-1"),
        ({"eps": 0.0}, "eps.*0"),
        ({"eps": -1e-6}, "eps"),
        ({"warmup_steps": -1}, "warmup_steps.*-1"),
        ({"capacity": 0}, "capacity.*0"),
        ({"seed": -3}, "seed.*-3"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AdvReplayBuffer(**kwargs)


def test_naive_bad_constructor_arguments():
    with pytest.raises(ValueError, match="capacity"):
        NaiveReplayBuffer(capacity=0)
    with pytest.raises(ValueError, match="replay_ratio"):
        NaiveReplayBuffer(replay_ratio=-1)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (rollout(advantage=float("nan")), "advantage: nan"),
        (rollout(advantage=float("inf")), "advantage: inf"),
        (rollout(reward=float("nan")), "reward: nan"),
        (rollout(behavior_logprobs=[-0.1]), "1 behavior_logprobs for 2 completion_ids"),
        (rollout(step=-1), "negative step: -1"),
        (rollout(step=1.0), "non-integer step: 1.0"),
        ("not a rollout", "expected a Rollout, got str"),
    ],
)
@pytest.mark.parametrize("cls", BUFFERS)
def test_bad_rollouts_raise_and_change_nothing(cls, bad, match):
    buf = cls()
    good = batch([0.5], step=0)
    buf.add(good)
    before = buf.metrics()
    with pytest.raises(ValueError, match=match):
        buf.add([rollout(0.5, step=0, problem_id=9), bad])
    with pytest.raises(ValueError, match=match):
        buf.compose([rollout(0.5, step=0, problem_id=9), bad], step=0)
    assert buf.stored() == good
    assert buf.metrics() == before


def test_steps_must_not_go_backwards():
    buf = AdvReplayBuffer()
    buf.compose(batch([0.5], step=5), step=5)
    with pytest.raises(ValueError, match="step 4 goes backwards.*step 5"):
        buf.sample(1, step=4)
    with pytest.raises(ValueError, match="step 4 goes backwards"):
        buf.compose([], step=4)
    with pytest.raises(ValueError, match="born at step 3, before step 5"):
        buf.add(batch([0.5], step=3))
    with pytest.raises(ValueError, match="born at step 5, before step 6"):
        buf.add([rollout(0.5, step=6), rollout(0.5, step=5)])  # out of order within one batch
    with pytest.raises(ValueError, match="step must be an integer >= 0, got -1"):
        buf.sample(1, step=-1)
    with pytest.raises(ValueError, match="n must be an integer >= 0, got -2"):
        buf.sample(-2, step=6)
    buf.add(batch([0.5], step=5))  # same step as the newest is fine
    assert len(buf) == 2


def test_zero_advantage_rollouts_still_set_the_birth_order():
    buf = AdvReplayBuffer()
    buf.add([rollout(0.0, step=4)])
    with pytest.raises(ValueError, match="born at step 2, before step 4"):
        buf.add([rollout(0.5, step=2)])


def test_numpy_integer_steps_and_tensor_like_tokens_are_accepted():
    buf = AdvReplayBuffer(warmup_steps=0)
    r = rollout(np.float64(0.5), step=np.int64(3), completion_ids=np.array([1, 2]))
    out = buf.compose([r], step=np.int64(3))
    assert out == [r]
    assert math.isclose(buf.metrics()["size"], 1)
