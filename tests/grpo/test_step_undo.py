"""A step a signal drops puts nothing back into the sampler: the undo is O(1) in the number of problems.

The trainer draws a step's problems before the part a signal can drop and feeds their rewards to the sampler only
after it; a dropped step keeps its drawn problems (in the checkpoint too) for the step that runs again.
"""

import signal
from pathlib import Path

import pytest

from priorl import faults
from priorl.grpo import checkpoint as ckpt
from priorl.grpo.trainer import Trainer, TrainingInterrupted

from .test_trainer import read_jsonl, tiny_config


@pytest.mark.parametrize("preset", ["grpo", "prioritized-pass", "prioritized+adv-replay"])
def test_a_dropped_step_keeps_its_problems_and_never_snapshots_the_sampler(tmp_path, monkeypatch, preset):
    steps = {"train.max_steps": 4, "checkpoint.every": 0, "checkpoint.every_minutes": "null"}
    full = Trainer(tiny_config(tmp_path / "a", preset, **steps))
    full.train()
    full.close()
    cfg = tiny_config(tmp_path / "b", preset, **steps)
    trainer = Trainer(cfg)
    calls = []
    original = trainer.sampler.state_dict
    monkeypatch.setattr(trainer.sampler, "state_dict", lambda: calls.append(trainer.step) or original())
    monkeypatch.setitem(faults._FAULTS, ("generate", 3), signal.SIGTERM)  # inside step 3's generation
    with pytest.raises(TrainingInterrupted) as info:
        trainer.train()
    trainer.close()
    assert info.value.step == 2 and calls == [2]  # state_dict only for the checkpoint, never per step
    state = ckpt.read_trainer_state(ckpt.list_checkpoints(cfg.out_dir)[-1])
    drawn = read_jsonl(Path(full.run_dir) / "batches.jsonl")[2]["problem_ids"]
    assert state["step"] == 2 and state["next_problem_ids"] == drawn  # step 3's problems, drawn before the signal
    resumed = Trainer(cfg, resume=True)
    resumed.train()
    resumed.close()
    assert read_jsonl(Path(cfg.out_dir) / "batches.jsonl") == read_jsonl(Path(full.run_dir) / "batches.jsonl")
    assert resumed.sampler.state_dict().keys() == full.sampler.state_dict().keys()
    a, b = resumed.sampler.state_dict(), full.sampler.state_dict()
    assert all(str(a[k]) == str(b[k]) for k in a), [k for k in a if str(a[k]) != str(b[k])]
