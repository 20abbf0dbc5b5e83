"""Runs that survive kills and faults: SIGKILL at several points then --resume, disk full, NaN, bad input."""

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from priorl.grpo import checkpoint as ckpt
from priorl.grpo.trainer import Trainer, TrainingError

from .test_trainer import read_jsonl, tiny_config

# Held-out evaluation at steps 2 and 4 on 8 problems, greedy and sampled (avg@2): a resumed run must repeat
# those too, and evaluation must not disturb training.
COMMON = [
    "--max-steps", "4", "--checkpoint-every", "1",
    "--set", "generation.group_size=4", "--set", "generation.max_new_tokens=6", "--set", "train.batch_size=4",
    "--set", "train.lr=1e-4", "--set", "replay.warmup_steps=1", "--set", "eval.before=false",
    "--set", "eval.after=false", "--set", "eval.every=2", "--set", "eval.max_problems=8",
    "--set", "eval.samples=2", "--set", "logging.progress=false",
    "--preset", "prioritized+adv-replay",  # both stateful parts: the (heap) sampler and the replay buffer
]  # fmt: skip


def env_with(fault: str | None = None) -> dict:
    env = dict(os.environ)
    env.pop("PRIORL_FAULT", None)
    if fault:
        env["PRIORL_FAULT"] = fault
    return env


def cli(out: Path, *extra: str, fault: str | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "priorl.cli", "train", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env_with(fault))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("full") / "run"
    proc = cli(out, "--out", str(out), *COMMON)
    assert proc.returncode == 0, proc.stderr
    return out


def same_run(a: Path, b: Path) -> None:
    """Run ``b`` (stopped and resumed) did exactly what the uninterrupted run ``a`` did."""
    assert read_jsonl(a / "batches.jsonl") == read_jsonl(b / "batches.jsonl")
    ma, mb = read_jsonl(a / "metrics.jsonl"), read_jsonl(b / "metrics.jsonl")
    assert [m["step"] for m in mb] == [1, 2, 3, 4]  # each step logged once
    for x, y in zip(ma, mb, strict=True):
        for key in ("rollouts_generated", "tokens_generated", "reward_mean", "n_fresh", "n_replayed",
                    "coverage/max_visits", "coverage/p99_visits", "coverage/never_visited"):  # fmt: skip
            assert x[key] == y[key], key
        assert x["loss"] == pytest.approx(y["loss"], abs=1e-6)
    ea, eb = read_jsonl(a / "eval.jsonl"), read_jsonl(b / "eval.jsonl")
    assert [e["step"] for e in eb] == [2, 4]  # each evaluation once
    for x, y in zip(ea, eb, strict=True):
        assert (x["accuracy"], x["sampled"]["accuracy"]) == (y["accuracy"], y["sampled"]["accuracy"])
    assert read_jsonl(a / "samples.jsonl") == read_jsonl(b / "samples.jsonl")
    summary = json.loads((b / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["steps"]["done"] == 4
    assert summary["run_id"] == json.loads((b / "run.json").read_text())["run_id"]


def same_weights(a: Path, b: Path) -> None:
    from safetensors.torch import load_file

    wa = load_file(str(ckpt.list_checkpoints(a)[-1] / "model" / "model.safetensors"))
    wb = load_file(str(ckpt.list_checkpoints(b)[-1] / "model" / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa:
        assert (wa[k] - wb[k]).abs().max() <= 1e-6, k


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


@pytest.mark.parametrize(
    ("fault", "code", "saved"),
    [
        ("generate:3:INT", 130, "step_000002"),  # mid-generation: step 3 is dropped, step 2 saved
        ("update:3:TERM", 143, "step_000003"),  # mid-update: step 3 completes, then is saved
        ("eval:2:INT", 130, "step_000002"),  # mid-evaluation: step 2 saved, its evaluation still due
    ],
)
def test_sigint_or_sigterm_saves_the_last_step_and_resume_matches(tmp_path, uninterrupted, fault, code, saved):
    out = tmp_path / "run"
    # No scheduled checkpoint at all: everything a resume has comes from the checkpoint the signal wrote.
    stopped = cli(out, "--out", str(out), *COMMON, "--checkpoint-every", "0", fault=fault)
    assert stopped.returncode == code, stopped.stderr
    assert [p.name for p in ckpt.list_checkpoints(out)] == [saved]
    lines = [line for line in stopped.stderr.splitlines() if "continue with" in line]
    assert len(lines) == 1 and f"priorl train --resume {out}" in lines[0] and saved in lines[0]
    assert json.loads((out / "summary.json").read_text())["status"] == "interrupted"
    resumed = cli(out, "--resume", str(out))
    assert resumed.returncode == 0, resumed.stderr
    same_run(uninterrupted, out)
    same_weights(uninterrupted, out)


def test_a_second_sigint_quits_at_once_without_saving(tmp_path):
    out = tmp_path / "run"
    # The first arrives mid-update (the step must complete), the second before its checkpoint is written.
    proc = cli(out, "--out", str(out), *COMMON, "--checkpoint-every", "2", fault="update:3:INT,logged:3:INT")
    assert proc.returncode == 130
    assert "stopped at once, without saving" in proc.stderr and "Traceback" not in proc.stderr
    assert [p.name for p in ckpt.list_checkpoints(out)] == ["step_000002"]


def test_external_sigint_mid_run_then_resume_matches(tmp_path, uninterrupted):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "priorl.cli", "train", "--out", str(out), *COMMON, "--checkpoint-every", "0",
           "--set", "logging.progress=true", "--set", "logging.progress_every_s=0"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env_with())
    for line in proc.stdout:  # a log, not a terminal: plain progress lines
        if line.startswith("step 1/4"):
            proc.send_signal(signal.SIGINT)  # wherever step 2 is, the result must not change
            break
    rest, err = proc.communicate(timeout=600)
    assert proc.returncode == 130, err
    assert "continue with" in err
    resumed = cli(out, "--resume", str(out))
    assert resumed.returncode == 0, resumed.stderr
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
    with pytest.raises(TrainingError, match="2 steps in a row with non-finite losses or gradients, the last at step 2"):
        trainer.train()
    trainer.close()
    after = trainer.model.state_dict()
    assert all((before[k] == after[k]).all() for k in before)  # no update applied
    assert [p.name for p in ckpt.list_checkpoints(cfg.out_dir)] == ["step_000002"]
    first = read_jsonl(Path(cfg.out_dir) / "metrics.jsonl")[0]
    assert first["nonfinite_skipped"] == cfg.train.updates_per_step and first["updates"] == 0  # every update skipped


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
