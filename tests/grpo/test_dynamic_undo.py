"""Dynamic sampling: a step a signal drops between its rounds is undone through the sampler's undo log, O(B)
a step (no state_dict per step), and the resumed run is the uninterrupted one."""

import os
import signal
from pathlib import Path

import pytest

from priorl.grpo.trainer import Trainer, TrainingInterrupted

from .test_trainer import read_jsonl, tiny_config

STEPS = {
    "train.max_steps": 5,
    "checkpoint.every": 0,
    "checkpoint.every_minutes": "null",
    "dynamic_sampling.max_rounds": 4,
}


@pytest.mark.parametrize(
    "preset, extra",
    [("dynamic-sampling", {}), ("prioritized", {"dynamic_sampling.enabled": "true"})],
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
