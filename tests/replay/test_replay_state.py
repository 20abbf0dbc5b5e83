"""state_dict / load_state_dict: exact resume (identical future draws), JSON and safetensors, validation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from replay_helpers import batch, key, rollout
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from priorl.replay import AdvReplayBuffer, NaiveReplayBuffer


def to_jsonable(obj):
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


def json_round_trip(state):
    return json.loads(json.dumps(to_jsonable(state)))


def run(buf, steps, start):
    """Compose a deterministic stream of fresh batches; return what each step trained on."""
    out = []
    for s in range(start, start + steps):
        advs = [((s * 7 + i * 3) % 9 - 4) / 4 for i in range(6)]  # mixed signs, some zeros
        fresh = batch(advs, step=s, start_id=100 * s)
        out.append([key(r) for r in buf.compose(fresh, step=s)])
    return out


def filled(cls=AdvReplayBuffer, **kw):
    kw = {"tau_max": 3, "warmup_steps": 2, "capacity": 16, "seed": 5, **kw}
    if cls is NaiveReplayBuffer:
        kw.pop("tau_max")
    buf = cls(**kw)
    run(buf, 9, 0)  # wraps the ring and evicts by age and by capacity
    return buf, kw


@pytest.mark.parametrize("cls", [AdvReplayBuffer, NaiveReplayBuffer])
@pytest.mark.parametrize("form", ["dict", "json"])
def test_round_trip_gives_identical_future_draws(cls, form):
    buf, kw = filled(cls)
    state = buf.state_dict()
    restored = cls(**kw)
    restored.load_state_dict(json_round_trip(state) if form == "json" else state)
    assert [key(r) for r in restored.stored()] == [key(r) for r in buf.stored()]
    assert restored.metrics() == buf.metrics()
    assert run(restored, 8, 9) == run(buf, 8, 9)
    assert restored.metrics() == buf.metrics()


def test_state_is_json_plus_safetensors_and_never_needs_pickle():
    buf, kw = filled()
    state = buf.state_dict()
    arrays = state.pop("rollouts")
    assert all(isinstance(v, np.ndarray) for v in arrays.values())
    blob = st_save(arrays)
    text = json.dumps(state)  # everything else is plain JSON as is
    restored = AdvReplayBuffer(**kw)
    restored.load_state_dict({**json.loads(text), "rollouts": st_load(blob)})
    assert run(restored, 5, 9) == run(buf, 5, 9)


def test_round_trip_keeps_token_values_exactly():
    buf = AdvReplayBuffer()
    logprobs = np.array([-0.1, -1e-8, -3.3], dtype=np.float32)
    original = rollout(0.5, prompt_ids=np.array([7, 8]), completion_ids=[1, 2, 3], behavior_logprobs=logprobs)
    buf.add([original])
    restored = AdvReplayBuffer()
    restored.load_state_dict(json_round_trip(buf.state_dict()))
    (r,) = restored.stored()
    assert r.prompt_ids.tolist() == [7, 8]
    assert r.completion_ids.tolist() == [1, 2, 3]
    assert np.array_equal(r.behavior_logprobs, logprobs.astype(np.float64))


def test_empty_buffer_round_trips():
    buf = AdvReplayBuffer()
    restored = AdvReplayBuffer()
    restored.load_state_dict(json_round_trip(buf.state_dict()))
    assert len(restored) == 0
    assert restored.sample(3, step=0) == []


@settings(max_examples=25, deadline=None)
@given(split=st.integers(0, 12), seed=st.integers(0, 100), capacity=st.integers(1, 20), tau_max=st.integers(0, 5))
def test_resume_at_any_step_is_exact(split, seed, capacity, tau_max):
    kw = {"tau_max": tau_max, "warmup_steps": 1, "capacity": capacity, "seed": seed}
    straight = AdvReplayBuffer(**kw)
    expected = run(straight, 14, 0)
    first = AdvReplayBuffer(**kw)
    got = run(first, split, 0)
    resumed = AdvReplayBuffer(**kw)
    resumed.load_state_dict(json_round_trip(first.state_dict()))
    got += run(resumed, 14 - split, split)
    assert got == expected


# ---------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "missing",
    [
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
    ],
)
def test_missing_key_is_named(missing):
    state = filled()[0].state_dict()
    del state[missing]
    with pytest.raises(ValueError, match=f"missing the key '{missing}'"):
        AdvReplayBuffer(capacity=16).load_state_dict(state)


@pytest.mark.parametrize("missing", ["advantage", "prompt_offsets", "behavior_logprobs"])
def test_missing_column_is_named(missing):
    state = filled()[0].state_dict()
    del state["rollouts"][missing]
    with pytest.raises(ValueError, match=f"missing the key '{missing}'"):
        AdvReplayBuffer(capacity=16).load_state_dict(state)


def test_wrong_capacity_or_kind_is_rejected_and_changes_nothing():
    buf, kw = filled()
    state = buf.state_dict()
    other = AdvReplayBuffer(capacity=17)
    other.add([rollout(0.5)])
    with pytest.raises(ValueError, match="capacity 16, this buffer has capacity 17"):
        other.load_state_dict(state)
    assert len(other) == 1
    with pytest.raises(ValueError, match="'priority' buffer, this one is 'uniform'"):
        NaiveReplayBuffer(capacity=16).load_state_dict(state)


@pytest.mark.parametrize(
    ("corrupt", "match"),
    [
        (lambda s: s["rollouts"].update(step=s["rollouts"]["step"][::-1].copy()), "birth order"),
        (lambda s: s["rollouts"].update(advantage=np.zeros_like(s["rollouts"]["advantage"])), "advantage 0"),
        (lambda s: s["rollouts"].update(reward=s["rollouts"]["reward"][:-1]), "reward has"),
        (
            lambda s: s["rollouts"].update(behavior_logprobs=s["rollouts"]["behavior_logprobs"][:-1]),
            "behavior_logprobs",
        ),
        (
            lambda s: s["rollouts"].update(prompt_offsets=s["rollouts"]["prompt_offsets"] * 2),
            "prompt_offsets",
        ),
        (lambda s: s.update(head=99), "head 99"),
        (lambda s: s.update(format="other/9"), "format 'other/9'"),
        (lambda s: s.update(rng={"bit_generator": "nope"}), "rng"),
        (lambda s: s["counters"].pop("evicted_age"), "evicted_age"),
    ],
)
def test_malformed_state_is_rejected(corrupt, match):
    buf, kw = filled()
    state = buf.state_dict()
    corrupt(state)
    target = AdvReplayBuffer(**kw)
    with pytest.raises(ValueError, match=match):
        target.load_state_dict(state)
    assert len(target) == 0
