"""Component state through safetensors + JSON files: exact continuation, clear errors."""

import numpy as np
import pytest

from priorl import AdvReplayBuffer, Rollout, UniformSampler
from priorl.sampling.experimental import ExperimentalPrioritizedSampler
from priorl.statefile import load_state, save_state


def test_samplers_continue_exactly_from_files(tmp_path):
    rng = np.random.default_rng(0)
    for make in (
        lambda: ExperimentalPrioritizedSampler(40, seed=1, selection="stochastic"),
        lambda: UniformSampler(40),
    ):
        a = make()
        for _ in range(9):
            ids = a.sample(6)
            a.observe(ids, (rng.random((6, 4)) < 0.5).astype(float))
        save_state(tmp_path, "sampler", a.state_dict())
        b = make()
        b.load_state_dict(load_state(tmp_path, "sampler"))
        assert [b.sample(6) for _ in range(5)] == [a.sample(6) for _ in range(5)]


def test_replay_buffer_continues_exactly_from_files(tmp_path):
    def fresh(step):
        return [
            Rollout(
                problem_id=i,
                prompt_ids=[1, 2],
                completion_ids=[3, 4, 5],
                behavior_logprobs=[-0.1] * 3,
                reward=float(i % 2),
                advantage=(i % 3) - 1.0,
                step=step,
            )
            for i in range(8)
        ]

    a = AdvReplayBuffer(warmup_steps=0, seed=3)
    for step in range(5):
        a.compose(fresh(step), step)
    save_state(tmp_path, "replay", a.state_dict())
    b = AdvReplayBuffer(warmup_steps=0, seed=3)
    b.load_state_dict(load_state(tmp_path, "replay"))
    for step in range(5, 9):
        ra = [(r.problem_id, r.step) for r in a.compose(fresh(step), step)]
        rb = [(r.problem_id, r.step) for r in b.compose(fresh(step), step)]
        assert ra == rb


def test_missing_or_broken_state_files_name_the_file(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_state(tmp_path, "nope")
    save_state(tmp_path, "s", {"a": np.arange(3), "b": {"c": 1}})
    (tmp_path / "s.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"s\.json is not valid JSON"):
        load_state(tmp_path, "s")
    with pytest.raises(ValueError, match="dtype object"):
        save_state(tmp_path, "t", {"x": np.array([object()])})
