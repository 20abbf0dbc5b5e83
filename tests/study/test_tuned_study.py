"""A tuned study end to end on the shipped tiny model: tuning on validation, the choice, evaluation on test,
summary.json's fields, and a resume that adds a grid value and an evaluation seed reusing every run done."""

import json
import subprocess
import sys
from pathlib import Path

TINY = [
    "-c", "configs/demo.yaml", "--presets", "grpo,adv-replay", "--budget", "64", "--eval-points", "4",
    "--set", "train.batch_size=4", "--set", "generation.group_size=4", "--set", "generation.max_new_tokens=6",
    "--set", "eval.max_problems=8", "--set", "eval.samples=0", "--set", "replay.warmup_steps=1",
    "--set", "checkpoint.every=0", "--set", "data.validation_max=8",
]  # fmt: skip


def compare(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "priorl.cli", "compare", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def stamps(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("metrics.jsonl")}


def test_tuned_study_then_resume_with_a_new_grid_value_and_seed(tmp_path):
    out = tmp_path / "study"
    first = compare(*TINY, "--grid", "train.lr=1e-5,1e-4", "--tune-seeds", "100,", "--seeds", "0,", "--out", str(out))
    assert first.returncode == 0, first.stderr
    text = " ".join(first.stdout.split())
    assert "2 presets x 2 grid value(s) x 1 tuning seeds + 2 presets x 1 evaluation seeds = 6 runs" in text
    assert "edge of the grid" in text  # two values: whichever wins is at an edge
    # without a terminal, a line per finished run (issue 32: a study in a log used to print nothing for minutes)
    assert "run 1/6 done: tune grpo train.lr=1e-05 seed 100 (finished" in first.stdout
    assert "tuning: 4 runs" in first.stdout and "evaluation: 2 runs" in first.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert "validation" in summary["criterion"] and summary["primary"]["preset"] == "adv-replay"
    for preset in ("grpo", "adv-replay"):
        e = summary["presets"][preset]
        assert set(e["chosen"]) == {"train.lr"} and e["chosen"]["train.lr"] in (1e-5, 1e-4)
        assert [r["name"] for r in e["sensitivity"]] == ["train.lr=1e-05", "train.lr=0.0001"]
        assert sum(r["chosen"] for r in e["sensitivity"]) == 1 and e["edge"]
        assert set(e["completions_to_target"]) == set(summary["targets"])
        chosen = e["chosen"]["train.lr"]
        run_dir = out / "eval" / preset / f"train.lr={chosen:g}" / "seed_0"
        assert (run_dir / "summary.json").exists()
        tune_cfg = (out / "tune" / preset / "train.lr=1e-05" / "seed_100" / "config.yaml").read_text()
        assert "split: validation" in tune_cfg
    if summary["targets"]:
        assert set(summary["targets"]) == {"0.5", "0.75", "0.9"}
        r = summary["presets"]["adv-replay"]["ratio_to_grpo"]["0.9"]
        assert set(r) >= {"completions", "tokens", "wall"}
    else:
        assert summary["targets_from"].startswith("n/a")
    for name in ("report.md", "accuracy_vs_rollouts.png", "sensitivity.png", "tuning_curves.png"):
        assert (out / name).exists(), name
    before = stamps(out / "tune")
    assert len(before) == 4

    # A finished run needs only its logs: with every checkpoint gone (a study committed without them, read on
    # another machine), a resume reuses all of them.
    import shutil

    for ckpt in list(out.rglob("checkpoints")):
        shutil.rmtree(ckpt)
    summary_before = json.loads((out / "summary.json").read_text())
    assert all(r["evals"] and r["metrics"] for rs in summary_before["runs"].values() for r in rs)  # curves kept
    same = compare("--resume", str(out))
    assert same.returncode == 0, same.stderr
    assert stamps(out / "tune") == before and "reused" in same.stdout

    # Add a grid value and an evaluation seed: only the new runs train.
    again = compare("--resume", str(out), "--grid", "train.lr=1e-5,1e-4,1e-3", "--seeds", "0,1")
    assert again.returncode == 0, again.stderr
    after = stamps(out / "tune")
    assert {k: after[k] for k in before} == before  # every tuning run reused, untouched
    assert len(after) == 6  # the two new ones (1e-3 for each preset)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["study"]["seeds"] == [0, 1] and len(summary["presets"]["grpo"]["sensitivity"]) == 3
    assert all(e["seeds_ok"] == 2 for e in summary["presets"].values())
    study = json.loads((out / "study.json").read_text())
    assert study["status"] == "finished" and len(study["sessions"]) == 3
    assert all(session["machine"]["torch"] for session in study["sessions"])

    # Changing what every run depends on is refused, naming it.
    refused = compare("--resume", str(out), "--budget", "128")
    assert refused.returncode == 2 and "budget (64 there, 128 now)" in " ".join(refused.stderr.split())
