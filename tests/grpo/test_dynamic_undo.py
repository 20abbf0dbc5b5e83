"""Dynamic sampling: a step a signal drops between its rounds is undone through the sampler's undo log, O(B)
a step (no state_dict per step), and the resumed run is the uninterrupted one."""

import os
import signal
from pathlib import Path

import pytest

from priorl.grpo.trainer import Trainer, TrainingInterrupted
from priorl.presets import preset_of

from .test_trainer import read_jsonl, tiny_config

STEPS = {
    "train.max_steps": 5,
    "checkpoint.every": 0,
    "checkpoint.every_minutes": "null",
    "dynamic_sampling.max_rounds": 4,
}


@pytest.mark.parametrize(
    "preset, extra",
    [
        ("dynamic-sampling", {}),
        ("prioritized", {"dynamic_sampling.enabled": "true"}),
        # the K-of-B step: rounds of 2 pass-sampler-chosen problems until 3 informative groups are in hand
        (
            "prioritized-pass",
            {
                "dynamic_sampling.enabled": "true",
                "dynamic_sampling.informative_target": 3,
                "dynamic_sampling.round_size": 2,
            },
        ),  # fmt: skip
    ],
)
def test_a_step_dropped_between_dynamic_rounds_is_undone_without_snapshots(tmp_path, monkeypatch, preset, extra):
    full = Trainer(tiny_config(tmp_path / "a", preset, **STEPS, **extra))
    full.train()
    full.close()
    metrics = read_jsonl(Path(full.run_dir) / "metrics.jsonl")
    multi = [m["step"] for m in metrics if m["step"] >= 2 and m["dynamic_rounds"] >= 2]
    assert multi, "no step of the reference run took two rounds"
    target = multi[0]

    cfg = tiny_config(tmp_path / "b", preset, **STEPS, **extra)
    trainer = Trainer(cfg)
    calls = []
    original = trainer.sampler.state_dict
    monkeypatch.setattr(trainer.sampler, "state_dict", lambda: calls.append(trainer.step) or original())
    generate, seen = trainer.generator.generate, []

    def generate_then_signal(*args, **kwargs):
        out = generate(*args, **kwargs)
        if trainer.step == target:
            seen.append(1)
            if len(seen) == 2:  # the second round: the sampler has drawn twice and observed once this step
                os.kill(os.getpid(), signal.SIGTERM)
        return out

    monkeypatch.setattr(trainer.generator, "generate", generate_then_signal)
    with pytest.raises(TrainingInterrupted) as info:
        trainer.train()
    trainer.close()
    assert info.value.step == target - 1
    # The undo log's base at the first step, and the checkpoint: never a snapshot per step.
    assert calls == [0, target - 1]

    resumed = Trainer(cfg, resume=True)
    resumed.train()
    resumed.close()
    assert read_jsonl(Path(cfg.out_dir) / "batches.jsonl") == read_jsonl(Path(full.run_dir) / "batches.jsonl")
    a, b = resumed.sampler.state_dict(), full.sampler.state_dict()
    assert a.keys() == b.keys() and all(str(a[k]) == str(b[k]) for k in a), [k for k in a if str(a[k]) != str(b[k])]


def test_the_k_of_b_step_counts_every_completion_and_keeps_every_informative_group(tmp_path):
    K, b, G = 3, 2, 4
    cfg = tiny_config(
        tmp_path, "prioritized-pass", **STEPS, **{"dynamic_sampling.enabled": "true",
        "dynamic_sampling.informative_target": K, "dynamic_sampling.round_size": b},
    )  # fmt: skip
    trainer = Trainer(cfg)
    generated = []
    generate = trainer.generator.generate
    trainer.generator.generate = lambda prompts, n, **kw: (
        generated.append(len(prompts) * n) or generate(prompts, n, **kw)
    )
    trainer.train()
    trainer.close()
    metrics = read_jsonl(Path(cfg.out_dir) / "metrics.jsonl")
    batches = read_jsonl(Path(cfg.out_dir) / "batches.jsonl")
    assert metrics[-1]["rollouts_generated"] == sum(generated)  # every round's completions, kept or not
    previous = 0
    for m, batch in zip(metrics, batches, strict=True):
        assert m["rollouts_generated"] - previous == m["groups_generated"] * G == m["dynamic_rounds"] * b * G
        previous = m["rollouts_generated"]
        assert all(len(set(r)) > 1 for r in batch["rewards"])  # the step's batch: informative groups only
        informative = len(batch["rewards"])
        assert m["groups_kept"] == informative and m["n_fresh"] == informative * G  # all of them trained on
        assert informative >= K or m["dynamic_rounds"] == cfg.dynamic_sampling.max_rounds
        assert informative < K + b  # it stops at the round that reaches K


def test_the_k_of_b_step_shape_from_a_share_of_the_batch_and_its_defaults():
    from priorl.config import DynamicSamplingConfig

    assert DynamicSamplingConfig(enabled=True).step_shape(64) == (64, 64)  # DAPO: B informative, rounds of B
    assert DynamicSamplingConfig(enabled=True, informative_share=0.375).step_shape(64) == (24, 16)  # b = B/4
    assert DynamicSamplingConfig(enabled=True, informative_share=0.25).step_shape(10) == (3, 3)  # ceil(2.5), ceil
    assert DynamicSamplingConfig(enabled=True, informative_target=5, round_size=2).step_shape(64) == (5, 2)
    assert DynamicSamplingConfig(enabled=True, round_size=8).step_shape(64) == (64, 8)
    with pytest.raises(ValueError, match=r"informative_target \(5\) and dynamic_sampling.informative_share"):
        DynamicSamplingConfig(enabled=True, informative_target=5, informative_share=0.5)
    with pytest.raises(ValueError, match="informative_share is set, but dynamic_sampling.enabled"):
        DynamicSamplingConfig(informative_share=0.5)


@pytest.mark.parametrize("preset", ["grpo-kofb", "prioritized-pass-kofb"])
def test_the_k_of_b_presets_train_on_k_or_more_informative_groups_of_rounds_of_b(tmp_path, preset):
    cfg = tiny_config(tmp_path, preset, **STEPS, **{"train.batch_size": 8})
    K, b = cfg.dynamic_sampling.step_shape(cfg.train.batch_size)
    assert (K, b) == (3, 2) and preset_of(cfg) == preset  # K = ceil(3/8 x 8), b = 8 / 4
    trainer = Trainer(cfg)
    trainer.train()
    trainer.close()
    for m in read_jsonl(Path(cfg.out_dir) / "metrics.jsonl"):
        assert m["groups_generated"] == m["dynamic_rounds"] * b
        assert K <= m["groups_kept"] < K + b or m["dynamic_rounds"] == cfg.dynamic_sampling.max_rounds


def test_coverage_counts_every_generated_group_of_a_dynamic_step_kept_or_not(tmp_path):
    cfg = tiny_config(tmp_path, "prioritized-pass-kofb", **STEPS, **{"train.batch_size": 8})
    trainer = Trainer(cfg)
    trainer.train()
    trainer.close()
    batches = read_jsonl(Path(cfg.out_dir) / "batches.jsonl")
    metrics = read_jsonl(Path(cfg.out_dir) / "metrics.jsonl")
    for m, batch in zip(metrics, batches, strict=True):
        assert len(batch["generated_ids"]) == m["groups_generated"] >= len(batch["problem_ids"])
        assert set(batch["problem_ids"]) <= set(batch["generated_ids"])
    visits = trainer.coverage.visits()
    assert visits.sum() == sum(len(b["generated_ids"]) for b in batches) == metrics[-1]["rollouts_generated"] // 4
    from priorl.sampling.coverage import Coverage

    rebuilt = Coverage(len(visits))
    rebuilt.replay_batches(Path(cfg.out_dir) / "batches.jsonl")  # what a resume rebuilds
    assert (rebuilt.visits() == visits).all()
