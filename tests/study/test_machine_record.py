"""Where a run ran (issue 42): identical results across processes on one machine; a study resumed on another
machine says so in its report, and one under another torch version or precision is refused."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.numpy import load_file

from priorl.study.record import check_machine, study_machine
from priorl.study.report import where_runs_ran

ROOT = Path(__file__).resolve().parents[2]
RUN = [
    "--preset", "prioritized-pass+adv-replay", "--set", "model.path=builtin:tiny-arith", "--set", "train.batch_size=4",
    "--set", "generation.group_size=4", "--set", "generation.max_new_tokens=6", "--set", "train.max_steps=3",
    "--set", "replay.warmup_steps=1", "--set", "eval.before=false", "--set", "eval.after=false",
    "--set", "eval.during=0", "--set", "logging.tensorboard=false", "--set", "logging.progress=false",
]  # fmt: skip


def test_two_processes_same_config_and_threads_end_with_identical_state(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name in ("a", "b"):
        cmd = [sys.executable, "-m", "priorl.cli", "train", *RUN, "--set", f"out_dir={tmp_path / name}"]
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    last = {name: sorted((tmp_path / name / "checkpoints").iterdir())[-1] for name in ("a", "b")}
    files = sorted(p.relative_to(last["a"]) for p in last["a"].rglob("*.safetensors"))
    parts = {str(f).split("/")[0].split(".")[0] for f in files}
    assert {"model", "optimizer", "sampler", "replay"} <= parts, parts
    for f in files:
        a, b = load_file(last["a"] / f), load_file(last["b"] / f)
        assert a.keys() == b.keys(), f
        for key in a:
            assert (a[key] == b[key]).all(), f"{f}: {key} differs between the two processes"


def _study(machine: dict) -> dict:
    return {"sessions": [{"machine": machine}]}


def test_resume_on_another_cpu_continues_with_a_note_and_other_torch_or_precision_is_refused(tmp_path):
    here = study_machine({"model": {"device": "cpu", "precision": "fp32"}})
    assert here["precision"] == "fp32" and here["torch"] and "cpu" in here
    assert check_machine(tmp_path, _study(here), here) == []
    other_cpu = {**here, "cpu": "Some Other CPU 9000", "cpu_bf16": []}
    (note,) = check_machine(tmp_path, _study(other_cpu), here)
    assert "another machine" in note and "Some Other CPU 9000" in note
    with pytest.raises(ValueError, match="torch '1.0.0'"):
        check_machine(tmp_path, _study({**here, "torch": "1.0.0"}), here)
    with pytest.raises(ValueError, match="precision 'bf16-mixed'"):
        check_machine(tmp_path, _study({**here, "precision": "bf16-mixed"}), here)


def test_report_lists_where_runs_ran_only_when_there_were_several_machines():
    a = {"cpu": "CPU A", "cpu_bf16": ["avx512_bf16"], "gpu": None, "torch": "2.13.0", "torch_threads": 1,
         "precision": "fp32"}  # fmt: skip
    b = {**a, "cpu": "CPU B", "cpu_bf16": []}
    one = {"runs": {"grpo": [{"seed": 0, "machine": a}, {"seed": 1, "machine": a}]}}
    assert where_runs_ran(one) == []
    two = {"runs": {"grpo": [{"seed": 0, "machine": a}, {"seed": 1, "machine": b}]}}
    text = "\n".join(where_runs_ran(two))
    assert "Where the runs ran" in text and "CPU A (avx512_bf16)" in text and "CPU B (no bf16 units)" in text
    assert "grpo seed 1" in text.split("CPU B")[1]
    json.dumps(two)  # plain data
