"""Runs that survive kills and faults: SIGKILL at several points then --resume, disk full, NaN, bad input."""

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from priorl.grpo import checkpoint as ckpt
from priorl.grpo.trainer import Trainer, TrainingError

from .test_trainer import read_jsonl, tiny_config

COMMON = [
    "--max-steps", "4", "--checkpoint-every", "1",
    "--set", "generation.group_size=4", "--set", "generation.max_new_tokens=6", "--set", "train.batch_size=4",
    "--set", "train.lr=1e-4", "--set", "replay.warmup_steps=1", "--set", "eval.before=false",
    "--set", "eval.after=false", "--set", "eval.during=0", "--set", "logging.progress=false",
]  # fmt: skip


def cli(out: Path, *extra: str, fault: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("PRIORL_FAULT", None)
    if fault:
        env["PRIORL_FAULT"] = fault
    cmd = [sys.executable, "-m", "priorl.cli", "train", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("full") / "run"
    proc = cli(out, "--out", str(out), *COMMON)
    assert proc.returncode == 0, proc.stderr
    return out


def same_run(a: Path, b: Path) -> None:
    assert read_jsonl(a / "batches.jsonl") == read_jsonl(b / "batches.jsonl")
    ma, mb = read_jsonl(a / "metrics.jsonl"), read_jsonl(b / "metrics.jsonl")
    assert [m["step"] for m in mb] == [1, 2, 3, 4]  # each step logged once
    for x, y in zip(ma, mb, strict=True):
        for key in ("rollouts_generated", "tokens_generated", "reward_mean", "n_fresh", "n_replayed"):
            assert x[key] == y[key], key
        assert x["loss"] == pytest.approx(y["loss"], abs=1e-6)


@pytest.mark.parametrize("point", ["generate", "update", "logged", "checkpoint"])
def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path, uninterrupted, point):
    out = tmp_path / "run"
    killed = cli(out, "--out", str(out), *COMMON, fault=f"{point}:3")
    assert killed.returncode == -9  # really killed
    complete = [p.name for p in ckpt.list_checkpoints(out)]
    assert complete[-1] == "step_000002"  # step 3's checkpoint never completed
    if point == "checkpoint":
        assert list((out / "checkpoints").glob(".tmp-step_000003-*"))  # the half-written one
    resumed = cli(out, "--resume", str(out), "--max-steps", "4")
    assert resumed.returncode == 0, resumed.stderr
    assert not list((out / "checkpoints").glob(".tmp-*"))
    same_run(uninterrupted, out)


def test_disk_full_while_checkpointing_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    cfg = tiny_config(tmp_path, "grpo", **{"checkpoint.every": 1})
    trainer = Trainer(cfg)
    real = ckpt._save_optimizer

    def full_disk(directory, optimizer):
        if trainer.step >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(directory, optimizer)

    monkeypatch.setattr(ckpt, "_save_optimizer", full_disk)
    with pytest.raises(ckpt.CheckpointError, match="No space left on device.*step_000001.*intact"):
        trainer.train()
    trainer.close()
    assert [p.name for p in ckpt.list_checkpoints(cfg.out_dir)] == ["step_000001"]
    assert not list((Path(cfg.out_dir) / "checkpoints").glob(".tmp-*"))
    monkeypatch.setattr(ckpt, "_save_optimizer", real)
    resumed = Trainer(cfg, resume=True)  # the surviving checkpoint loads
    assert resumed.step == 1
    resumed.close()


def test_nonfinite_losses_are_skipped_then_stop_the_run_with_a_checkpoint(tmp_path, monkeypatch):
    import priorl.grpo.trainer as trainer_module

    real = trainer_module.clipped_surrogate

    def nan_loss(*args, **kwargs):
        loss, stats = real(*args, **kwargs)
        return loss * float("nan"), stats

    monkeypatch.setattr(trainer_module, "clipped_surrogate", nan_loss)
    cfg = tiny_config(tmp_path, "grpo", **{"train.max_nonfinite_steps": 2})
    trainer = Trainer(cfg)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    with pytest.raises(TrainingError, match="2 non-finite losses or gradients in a row at step 2"):
        trainer.train()
    trainer.close()
    after = trainer.model.state_dict()
    assert all((before[k] == after[k]).all() for k in before)  # no update applied
    assert [p.name for p in ckpt.list_checkpoints(cfg.out_dir)] == ["step_000002"]
    assert read_jsonl(Path(cfg.out_dir) / "metrics.jsonl")[0]["nonfinite_skipped"] == 1


def test_unwritable_run_directory_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cfg = tiny_config(tmp_path, "grpo", out_dir=str(blocker / "run"))
    with pytest.raises(ValueError, match="cannot write the run directory"):
        Trainer(cfg)


def test_overlong_prompts_error_or_skip(tmp_path):
    data = tmp_path / "d.jsonl"
    rows = [{"prompt": f"{i}+{i}=", "answer": str(2 * i)} for i in range(10)]
    rows.insert(3, {"prompt": "1+" * 200 + "1=", "answer": "201"})
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = tiny_config(tmp_path, "grpo", **{"data.train": str(data), "data.test": "null"})
    with pytest.raises(ValueError, match=r"d\.jsonl:4: field 'prompt' is 403 tokens"):
        Trainer(cfg)
    skip = tiny_config(tmp_path, "grpo", **{"data.train": str(data), "data.test": "null", "data.overlong": "skip"})
    trainer = Trainer(skip)
    assert trainer.skipped_overlong == 1 and len(trainer.problems) == 10
    assert [p.id for p in trainer.problems] == list(range(10))
    trainer.close()


def test_resume_refuses_a_changed_config_and_names_the_keys(tmp_path):
    out = tmp_path / "run"
    assert cli(out, "--out", str(out), *COMMON[:2], *COMMON[4:]).returncode == 0
    lr = cli(out, "--resume", str(out), "--set", "train.lr=0.5")
    assert lr.returncode == 2 and "train.lr" in lr.stderr and "cannot change" in lr.stderr
    steps = cli(out, "--resume", str(out), "--max-steps", "6")
    assert steps.returncode == 2 and "--allow-change" in steps.stderr
    ok = cli(out, "--resume", str(out), "--max-steps", "5", "--allow-change")
    assert ok.returncode == 0, ok.stderr
    assert [m["step"] for m in read_jsonl(out / "metrics.jsonl")] == [1, 2, 3, 4, 5]
