"""`priorl compare` studies that survive a stop: SIGTERM / SIGINT checkpoint every run, `--resume` finishes the
study exactly, a changed study is refused, and summary.json says what produced it. Real CLI, tiny budgets."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

# Two presets x one seed, 10 steps a run (4 problems x 4 completions), held-out evaluation before, at 80
# completions and after. No scheduled checkpoints: whatever a resume continues from, a signal wrote.
COMMON = [
    "-c", "configs/demo.yaml", "--presets", "grpo,prioritized+adv-replay", "--seeds", "0,", "--budget", "160",
    "--eval-points", "2", "--set", "train.batch_size=4", "--set", "generation.group_size=4",
    "--set", "generation.max_new_tokens=6", "--set", "eval.max_problems=8", "--set", "eval.samples=0",
    "--set", "replay.warmup_steps=1", "--set", "checkpoint.every=0", "--set", "checkpoint.every_minutes=null",
    "--allow-inactive",  # 10 steps of 4 problems: the heap sampler sees first visits only (not what this tests)
]  # fmt: skip
RUNS = ("eval/grpo/default/seed_0", "eval/prioritized_adv-replay/default/seed_0")


def env_with(fault: str | None = None) -> dict:
    env = dict(os.environ)
    env.pop("PRIORL_FAULT", None)
    # One torch thread in every process: a run in this process (--jobs 1) then computes exactly what a run in a
    # worker (--jobs 2 on 2 cores: 1 thread each) does, so one reference serves both.
    env["OMP_NUM_THREADS"] = "1"
    if fault:
        env["PRIORL_FAULT"] = fault
    return env


def compare(*args: str, fault: str | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "priorl.cli", "compare", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env_with(fault))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The study, uninterrupted, with --jobs 2."""
    out = tmp_path_factory.mktemp("ref") / "cmp"
    proc = compare(*COMMON, "--jobs", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def same_study(a: Path, b: Path) -> None:
    """Study ``b`` (stopped and resumed) computed exactly what the uninterrupted study ``a`` did."""
    for run in RUNS:
        assert read_jsonl(a / run / "batches.jsonl") == read_jsonl(b / run / "batches.jsonl"), run
        ma, mb = read_jsonl(a / run / "metrics.jsonl"), read_jsonl(b / run / "metrics.jsonl")
        assert [m["step"] for m in mb] == list(range(1, 11)), run  # each step logged once
        for x, y in zip(ma, mb, strict=True):
            for key in ("rollouts_generated", "tokens_generated", "reward_mean", "n_fresh", "n_replayed"):
                assert x[key] == y[key], (run, key)
            assert x["loss"] == pytest.approx(y["loss"], abs=1e-6), run
        ea, eb = read_jsonl(a / run / "eval.jsonl"), read_jsonl(b / run / "eval.jsonl")
        assert [e["step"] for e in eb] == [0, 5, 10], run  # each evaluation once
        assert [e["accuracy"] for e in ea] == [e["accuracy"] for e in eb], run
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    assert sa["curves"] == sb["curves"]
    for preset, e in sa["presets"].items():
        for key in ("final_accuracy_mean", "final_accuracy_std", "completions_to_target", "informative_fraction",
                    "aes_vs_grpo", "tokens_trained_mean", "seeds_ok", "seeds_failed"):  # fmt: skip
            assert sb["presets"][preset][key] == e[key], (preset, key)
        for level, r in e["ratio_to_grpo"].items():  # (training time is measured, not computed: it differs)
            for what in ("completions", "tokens"):
                assert sb["presets"][preset]["ratio_to_grpo"][level][what] == r[what], (preset, level, what)
    assert sb["study"]["sessions"][-1]["resume"] is True and (b / "report.md").exists()


def files(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def workers_of(pid: int) -> set[int]:
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid == pid and "spawn_main" in (stat.parent / "cmdline").read_text():
                out.add(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return out


def alive(pids: set[int]) -> list[int]:
    def running(p: int) -> bool:
        try:
            return Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    return [p for p in pids if running(p)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads worker processes from /proc")
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143)])
def test_signal_to_the_parent_checkpoints_every_worker_then_resume_matches(tmp_path, reference, sig, code):
    out = tmp_path / "cmp"
    cmd = [sys.executable, "-m", "priorl.cli", "compare", *COMMON, "--jobs", "2", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env_with())
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 300
        # Both runs under way (step 1 logged): the signal lands wherever they are, and the result must not change.
        while time.monotonic() < deadline and not all(read_jsonl(out / r / "metrics.jsonl") for r in RUNS):
            workers |= workers_of(proc.pid)
            time.sleep(0.05)
        workers |= workers_of(proc.pid)
        assert len(workers) == 2, "expected two worker processes"
        proc.send_signal(sig)  # to the parent only: the workers are in their own process group
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    resume = f"continue with: priorl compare --resume {out}"
    lines = [line for line in err.splitlines() if "continue with" in line]
    # Under a loaded machine a 10-step run can finish between "both runs logged step 1" and the signal landing
    # (this raced in a loaded `make test`): every run is then checkpointed or finished, and at least one is caught.
    caught = [f"stopped by {sig.name}: {n} runs checkpointed, {2 - n} finished; {resume}" for n in (2, 1)]
    assert len(lines) == 1 and lines[0] in caught, err
    assert "Traceback" not in err
    deadline = time.monotonic() + 30
    while alive(workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(workers), "a worker outlived the study"
    # Nothing says the study finished; each run is interrupted, with the checkpoint of its last completed step.
    assert not (out / "summary.json").exists() and not (out / "report.md").exists()
    study = json.loads((out / "study.json").read_text())
    assert study["status"] == "interrupted"
    statuses = [r["status"] for r in study["runs"]]
    assert statuses.count("interrupted") == (2 if lines[0] == caught[0] else 1), statuses
    for run, record in zip(RUNS, study["runs"], strict=True):
        if record["status"] == "finished":  # it ended before the signal landed
            assert json.loads((out / run / "summary.json").read_text())["status"] == "finished"
            continue
        assert record["status"] == "interrupted", record
        steps = len(read_jsonl(out / run / "metrics.jsonl"))
        # A fast worker may have logged its last step (10) before the signal landed, and still not have finished:
        # it is interrupted too, with that step's checkpoint (this raced in a loaded `make test`).
        assert 1 <= steps <= 10 and record["checkpoint"].endswith(f"step_{steps:06d}"), run
        assert json.loads((out / run / "summary.json").read_text())["status"] == "interrupted"

    # A resume with other inputs is refused, names each key, and changes nothing.
    before = files(out)
    changed = compare("--resume", str(out), "--budget", "320", "--set", "train.lr=0.001")
    assert changed.returncode == 2 and "Traceback" not in changed.stderr
    message = " ".join(changed.stderr.split())
    for named in ("budget (160 there, 320 now)", "overrides (", "train.lr=0.001"):
        assert named in message, message
    assert files(out) == before

    resumed = compare("--resume", str(out), "--jobs", "2")
    assert resumed.returncode == 0, resumed.stderr
    same_study(reference, out)
    assert json.loads((out / "study.json").read_text())["status"] == "finished"


def test_sigint_in_process_checkpoints_the_run_then_resume_matches(tmp_path, reference):
    # --jobs 1: the runs train in the compare process itself; SIGINT arrives mid-update of grpo's step 3.
    out = tmp_path / "cmp"
    stopped = compare(*COMMON, "--out", str(out), fault="update:3:INT")
    assert stopped.returncode == 130, stopped.stderr
    lines = [line for line in stopped.stderr.splitlines() if "continue with" in line]
    assert lines == [
        f"stopped by SIGINT: 1 runs checkpointed, 0 finished, 1 to start; continue with: priorl compare --resume {out}"
    ], stopped.stderr
    assert [p.name for p in (out / RUNS[0] / "checkpoints").iterdir()] == ["step_000003"]
    assert not (out / RUNS[1]).exists()  # never started
    assert not (out / "summary.json").exists()
    resumed = compare("--resume", str(out), "--jobs", "2")  # the study's options are recorded; --jobs may change
    assert resumed.returncode == 0, resumed.stderr
    same_study(reference, out)


def test_summary_records_version_commit_and_each_runs_config(reference):
    from priorl import __version__

    summary = json.loads((reference / "summary.json").read_text())
    study = summary["study"]
    assert study["priorl_version"] == __version__
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent)
    assert study["git_commit"] == (head.stdout.strip() if head.returncode == 0 else None)
    assert study["presets"] == ["grpo", "prioritized+adv-replay"] and study["seeds"] == [0]
    assert (study["budget"], study["eval_points"]) == (160, 2)
    assert "train.batch_size=4" in study["overrides"] and study["base_config"]["train"]["batch_size"] == 64
    for preset, run in zip(("grpo", "prioritized+adv-replay"), RUNS, strict=True):
        (record,) = summary["runs"][preset]
        assert record["status"] == "finished" and record["dir"] == str(reference / run)
        assert record["config"] == yaml.safe_load((reference / run / "config.yaml").read_text())
        assert record["run_id"] == json.loads((reference / run / "run.json").read_text())["run_id"]
    # A resume of a finished study trains nothing: it reads the runs back and writes the same summary.
    again = compare("--resume", str(reference))
    assert again.returncode == 0, again.stderr
    resumed = json.loads((reference / "summary.json").read_text())
    assert resumed["presets"] == summary["presets"] and resumed["curves"] == summary["curves"]
    assert len(resumed["study"]["sessions"]) == 2


def test_provenance_outside_git_is_null(monkeypatch):
    from priorl.study import record as cmp

    def no_git(*args):
        raise subprocess.CalledProcessError(128, "git")

    monkeypatch.setattr(cmp, "_git", no_git)
    assert cmp.provenance()["git_commit"] is None and cmp.provenance()["git_dirty"] is None


def test_resume_needs_a_study_and_refuses_overwrite(tmp_path):
    proc = compare("--resume", str(tmp_path / "none"), *COMMON[:2])
    assert proc.returncode == 2 and "no study there" in proc.stderr
    proc = compare("--resume", str(tmp_path / "none"), "--overwrite")
    assert proc.returncode == 2 and "pass one of them" in proc.stderr


def test_a_study_recorded_with_config_keys_since_renamed_is_refused_naming_its_commit(tmp_path):
    """A study whose recorded base config this priorl cannot read (a kind renamed since) names the commit to resume
    it with, instead of building runs that would differ from the recorded ones."""
    from priorl.config import ConfigError, load_config
    from priorl.study.request import study_request

    base = load_config("configs/study.yaml").model_dump(mode="json")
    base["replay"]["kind"] = "adv"  # the name of adv-replay before the registry (issue 45)
    inputs = {"presets": ["grpo", "adv-replay"], "seeds": [0], "tune_seeds": [], "grid": {}, "overrides": [],
              "budget": 512, "eval_points": 4, "base_config": base}  # fmt: skip
    sessions = [{"git_commit": "f11b931cda0123456789"}]
    (tmp_path / "study.json").write_text(json.dumps({"inputs": inputs, "sessions": sessions, "runs": {}}))
    with pytest.raises(ConfigError) as error:
        study_request(resume=str(tmp_path))
    message = str(error.value)
    assert "replay.kind 'adv' is not a kind of replay" in message
    assert "commit f11b931cda" in message and f"--resume {tmp_path}" in message


def checkpoint_dirs(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("checkpoints") if p.is_dir())


def test_drop_checkpoints_deletes_each_finished_runs_and_changes_no_result(tmp_path, reference):
    # A run stopped at step 3 keeps its checkpoint (the resume needs it); once resumed to the end with
    # --drop-checkpoints it has none, nor has the run that started fresh, and the study computed what it would have.
    out = tmp_path / "cmp"
    stopped = compare(*COMMON, "--out", str(out), "--drop-checkpoints", fault="update:3:INT")
    assert stopped.returncode == 130, stopped.stderr
    assert "deleted once it finishes" in stopped.stdout
    assert checkpoint_dirs(out) == [f"{RUNS[0]}/checkpoints"]
    assert json.loads((out / "study.json").read_text())["inputs"]["drop_checkpoints"] is True
    resumed = compare("--resume", str(out), "--jobs", "2")  # the recorded choice holds
    assert resumed.returncode == 0, resumed.stderr
    assert checkpoint_dirs(out) == []
    same_study(reference, out)


def test_a_resume_with_drop_checkpoints_clears_the_finished_runs_it_reuses(tmp_path, reference):
    import shutil

    out = tmp_path / "cmp"
    shutil.copytree(reference, out)
    assert checkpoint_dirs(out) == sorted(f"{run}/checkpoints" for run in RUNS)  # kept by default
    before = json.loads((out / "summary.json").read_text())
    again = compare("--resume", str(out), "--drop-checkpoints")
    assert again.returncode == 0, again.stderr
    assert checkpoint_dirs(out) == []
    after = json.loads((out / "summary.json").read_text())
    assert after["presets"] == before["presets"] and after["curves"] == before["curves"]
