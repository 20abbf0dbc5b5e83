"""PriorlGRPOTrainer against the real TRL classes, on CPU, with the shipped tiny model."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")

from trl import GRPOConfig  # noqa: E402

from priorl.config import ModelConfig  # noqa: E402
from priorl.data import load_problems  # noqa: E402
from priorl.integrations.feed import ChunkFeed  # noqa: E402
from priorl.integrations.trl import INDEX_COLUMN, PriorlGRPOTrainer, PriorlRepeatSampler  # noqa: E402
from priorl.models import load_policy, load_tokenizer  # noqa: E402
from priorl.sampling import PrioritizedPassSampler, PrioritizedSampler  # noqa: E402

N_PROBLEMS = 24
G = 4


class _Recording:
    """Remembers what the sampler handed out and what it was told (mixed into a priorl sampler)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sampled: list[list[int]] = []
        self.observed: list[tuple[list[int], list[list[float]]]] = []

    def sample(self, batch_size):
        ids = super().sample(batch_size)
        self.sampled.append(list(ids))
        return ids

    def observe(self, problem_ids, rewards):
        self.observed.append((list(problem_ids), [list(g) for g in rewards]))
        super().observe(problem_ids, rewards)


class RecordingSampler(_Recording, PrioritizedSampler):
    """A PrioritizedSampler that remembers what it handed out and what it was told."""


class RecordingPassSampler(_Recording, PrioritizedPassSampler):
    """The same for the PrioritizedPassSampler."""


def _dataset():
    problems = load_problems("builtin:arithmetic")[:N_PROBLEMS]
    return datasets.Dataset.from_dict({"prompt": [p.prompt for p in problems], "answer": [p.answer for p in problems]})


class RewardLog:
    """A TRL reward function (exact answer match) that logs every call: (answers, rewards)."""

    __name__ = "exact_answer"

    def __init__(self, value=None):
        self.calls: list[tuple[list[str], list[float]]] = []
        self.completions: list[list[str]] = []
        self.value = value

    def __call__(self, completions, answer, **kwargs):
        self.completions.append(list(completions))
        rewards = [1.0 if c.strip() == a else 0.0 for c, a in zip(completions, answer, strict=True)]
        if self.value is not None:
            rewards = [self.value] * len(completions)
        self.calls.append((list(answer), rewards))
        return rewards


def _trainer(tmp_path, *, max_steps, reward, sampler=None, save_steps=2, **kwargs):
    tok = load_tokenizer(ModelConfig(path="builtin:tiny-arith"))
    tok.padding_side = "left"
    model = load_policy(ModelConfig(path="builtin:tiny-arith", device="cpu", dtype="float32"))
    args = GRPOConfig(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=8,  # 8 completions per step = 2 problems x G=4
        num_generations=G,
        max_completion_length=6,
        max_steps=max_steps,
        learning_rate=1e-4,
        logging_steps=1,
        save_steps=save_steps,
        save_strategy="steps",
        report_to="none",
        use_cpu=True,
        seed=0,
        temperature=1.0,
    )
    sampler = sampler or RecordingSampler(N_PROBLEMS, seed=0)
    return PriorlGRPOTrainer(
        model=model,
        reward_funcs=reward,
        args=args,
        train_dataset=_dataset(),
        processing_class=tok,
        sampler=sampler,
        **kwargs,
    )


def test_repeat_sampler_keeps_trl_index_pattern():
    sampler = PrioritizedSampler(10, seed=0)
    feed = ChunkFeed(sampler, 3)
    stream = list(PriorlRepeatSampler(feed, num_problems=10, mini_repeat_count=2, repeat_count=2))
    assert len(stream) == len(PriorlRepeatSampler(feed, 10, 2, 2)) == 3 * 3 * 2 * 2
    for k in range(3):  # each chunk: indices doubled in a row, the whole chunk twice
        block = stream[k * 12 : (k + 1) * 12]
        chunk = block[0:6:2]
        assert block[:6] == [i for i in chunk for _ in range(2)]
        assert block[6:] == block[:6]
        assert len(set(chunk)) == 3


def test_repeat_sampler_draws_lazily():
    sampler = RecordingSampler(10, seed=0)
    it = iter(PriorlRepeatSampler(ChunkFeed(sampler, 2), num_problems=10, mini_repeat_count=2, repeat_count=1))
    assert sampler.sampled == []  # nothing drawn before the loader asks
    next(it)
    assert len(sampler.sampled) == 1
    for _ in range(3):
        next(it)
    assert len(sampler.sampled) == 1  # the second chunk is drawn only when its first index is asked for
    next(it)
    assert len(sampler.sampled) == 2


def test_sampler_sees_every_group(tmp_path):
    reward = RewardLog()
    trainer = _trainer(tmp_path, max_steps=3, reward=reward, save_steps=100)
    sampler = trainer.priorl_sampler
    trainer.train()
    assert len(reward.calls) == 3  # one generation per step
    assert len(sampler.observed) == 3
    for (ids, groups), (answers, rewards) in zip(sampler.observed, reward.calls, strict=True):
        assert len(ids) == 2 and all(len(g) == G for g in groups)
        expected = [rewards[k * G : (k + 1) * G] for k in range(2)]
        assert groups == expected  # the exact rewards TRL computed, grouped by problem
        data = _dataset()
        assert [data[i]["answer"] for i in ids] == answers[::G]  # rows match the problems observed
    # every observed chunk was one the sampler handed out, in order; one more is drawn ahead (loader prefetch)
    assert [ids for ids, _ in sampler.observed] == sampler.sampled[:3]
    assert len(trainer.priorl_feed.pending) <= 1
    logged = [h for h in trainer.state.log_history if "priorl/calls" in h]
    assert logged, "sampler metrics should reach TRL's logs"


@pytest.mark.parametrize("kind", [RecordingSampler, RecordingPassSampler], ids=["heap", "pass"])
def test_resume_restores_sampler(tmp_path, kind):
    full_log, resumed_log = RewardLog(), RewardLog()
    full = _trainer(tmp_path / "a", max_steps=4, reward=full_log, sampler=kind(N_PROBLEMS, seed=0))
    full.train()
    ckpt = tmp_path / "a" / "out" / "checkpoint-2"
    saved = json.loads((ckpt / "priorl_sampler.json").read_text())
    assert (ckpt / "priorl_sampler.safetensors").exists()
    assert saved["sampler"]["calls"] >= 2

    resumed = _trainer(tmp_path / "b", max_steps=4, reward=resumed_log, sampler=kind(N_PROBLEMS, seed=0))
    resumed.train(resume_from_checkpoint=str(ckpt))
    a, b = full.priorl_sampler, resumed.priorl_sampler
    # the resumed sampler starts from the checkpoint's state: it first re-issues the chunk that was drawn
    # (loader prefetch) but not yet scored there, then trains on exactly what the uninterrupted run trained
    pending = saved["pending"]
    trained_after = [ids for ids, _ in b.observed]
    assert trained_after[: len(pending)] == pending
    assert trained_after == [ids for ids, _ in a.observed][2:4]
    # TRL sampled the same completions after the resume (the adapter restores the checkpoint's RNG state)
    assert resumed_log.completions == full_log.completions[2:4] and b.observed == a.observed[2:4]
    assert b.metrics()["calls"] == a.metrics()["calls"]


def test_resume_without_sampler_state_is_an_error(tmp_path):
    full = _trainer(tmp_path / "a", max_steps=2, reward=RewardLog())
    full.train()
    ckpt = tmp_path / "a" / "out" / "checkpoint-2"
    for f in ckpt.glob("priorl_sampler.*"):
        f.unlink()
    resumed = _trainer(tmp_path / "b", max_steps=3, reward=RewardLog())
    with pytest.raises(FileNotFoundError, match="priorl_sampler.json"):
        resumed.train(resume_from_checkpoint=str(ckpt))


def test_reward_outside_unit_interval_is_named(tmp_path):
    trainer = _trainer(tmp_path, max_steps=1, reward=RewardLog(value=2.5), save_steps=100)
    with pytest.raises(ValueError, match=r"reward 2\.5 is outside \[0, 1\].*reward_transform"):
        trainer.train()


def test_reward_transform_maps_rewards(tmp_path):
    trainer = _trainer(
        tmp_path, max_steps=1, reward=RewardLog(value=2.5), save_steps=100, reward_transform=lambda r: float(r > 1)
    )
    trainer.train()
    ((_, groups),) = trainer.priorl_sampler.observed
    assert groups == [[1.0] * G, [1.0] * G]


def test_bad_inputs_are_named(tmp_path):
    with pytest.raises(ValueError, match="covers 10 problems but train_dataset has 24 rows"):
        _trainer(tmp_path, max_steps=1, reward=RewardLog(), sampler=PrioritizedSampler(10))
    data = _dataset().add_column(INDEX_COLUMN, [0] * N_PROBLEMS)
    from priorl.integrations.trl import _with_index_column

    with pytest.raises(ValueError, match="row 1 has 0"):
        _with_index_column(data)


def test_throughput_bench_runs_both_engines():
    from priorl.bench.throughput import run_throughput_bench

    r = run_throughput_bench(batch_size=2, group_size=2, max_new_tokens=2, steps=2, progress=False)
    for engine in ("priorl", "trl"):
        assert len(r[engine]["step_seconds"]) == 2
        assert r[engine]["completions_per_second"] == pytest.approx(4 / r[engine]["seconds_per_step"])
    assert r["trl_over_priorl_seconds"] == pytest.approx(r["trl"]["seconds_per_step"] / r["priorl"]["seconds_per_step"])
