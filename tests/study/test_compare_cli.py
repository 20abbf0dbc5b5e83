"""`priorl eval` and `priorl compare` on the shipped tiny model, at tiny budgets."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from priorl.eval import aes


def cli(*args):
    return subprocess.run([sys.executable, "-m", "priorl.cli", *args], capture_output=True, text=True, timeout=600)


def test_aes_follows_the_spec():
    assert aes(0.6, 90, 0.5, 100) == pytest.approx(0.1 + 3 * 0.2)
    assert aes(0.4, 110, 0.5, 100) == pytest.approx(-0.1 - 5 * 0.2)
    with pytest.raises(ValueError):
        aes(0.5, 10, 0.0, 10)


def test_eval_json(tmp_path):
    proc = cli("eval", "--model", "builtin:tiny-arith", "--max-problems", "20", "--samples", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert 0 <= out["accuracy"] <= 1 and out["mean_length"] > 0 and set(out["by_level"]) <= {"1", "2", "3", "4", "5"}
    assert out["avg_at_k"]["k"] == 2


def test_compare_writes_summary_report_and_plots(tmp_path):
    # --jobs 2: the two runs side by side in spawned worker processes (the in-process path is test_runs'.)
    out = tmp_path / "cmp"
    proc = cli(
        "compare", "--presets", "grpo,prioritized+adv-replay", "--seeds", "0,", "--budget", "64", "--eval-points", "2",
        "--jobs", "2",
        "--out", str(out), "-c", "configs/demo.yaml", "--set", "train.batch_size=4", "--set", "generation.group_size=4",
        "--set", "eval.max_problems=20", "--set", "eval.samples=0", "--set", "replay.warmup_steps=1",
        "--allow-inactive",  # 4 steps of 4 problems: the heap sampler sees only first visits (not what this tests)
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    for preset in ("grpo", "prioritized+adv-replay"):
        e = summary["presets"][preset]
        for key in ("final_accuracy_mean", "final_accuracy_std", "completions_to_target", "ratio_to_grpo",
                    "informative_fraction", "aes_vs_grpo", "wall_s_mean", "tokens_trained_mean"):  # fmt: skip
            assert key in e
        assert e["seeds_ok"] == 1 and e["tokens_trained_mean"] > 0 and e["wall_s_mean"] > 0
    assert summary["presets"]["grpo"]["aes_vs_grpo"] == pytest.approx(0.0)
    assert (out / "report.md").exists() and (out / "accuracy_vs_rollouts.png").exists()
    report = (out / "report.md").read_text()
    assert "n=1, no interval" in report and "± 0.0%" not in report  # one seed: no pretend interval
    assert "AES: accuracy-efficiency score" in report and "(n=1)" in proc.stdout
    assert "no tuning phase" in summary["targets_from"] or summary["targets_from"].startswith("n/a")
    metrics = [json.loads(line) for line in (out / "eval/grpo/default/seed_0/metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["rollouts_generated"] == 64  # stopped at the budget (4 problems x 4 completions x 4 steps)


def test_compare_needs_the_baseline(tmp_path):
    proc = cli("compare", "-c", "configs/demo.yaml", "--presets", "prioritized", "--out", str(tmp_path / "x"))
    assert proc.returncode == 2 and "baseline 'grpo'" in proc.stderr


def test_seeds_take_lists_and_ranges_and_refuse_a_bare_count():
    from priorl.study import parse_seeds

    assert parse_seeds("0-4") == [0, 1, 2, 3, 4] and parse_seeds("7,8,9") == [7, 8, 9] and parse_seeds("5,") == [5]
    assert parse_seeds("0,2,5-7") == [0, 2, 5, 6, 7]
    with pytest.raises(ValueError, match=r"--seeds 17: a bare number.*--seeds 0-16 \(or --num-seeds 17\)"):
        parse_seeds("17")
    for bad in ("a", "1,1", "", "4-2", "0-2,2"):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad)


def test_a_bare_seed_count_fails_loudly_on_the_command_line(tmp_path):
    proc = cli("compare", "-c", "configs/demo.yaml", "--presets", "grpo", "--seeds", "3", "--out", str(tmp_path / "x"))
    assert proc.returncode == 2 and "--num-seeds 3" in proc.stderr and not (tmp_path / "x").exists()


def test_presets_pin_their_sampler_and_share_everything_else(tmp_path):
    from priorl.config import get_key, load_config
    from priorl.presets import PRESETS, preset_of
    from priorl.study import run_config

    base = load_config(
        "configs/demo.yaml",
        ["sampler.kind=experimental-prioritized", "sampler.estimator=window", "sampler.retest_every=7"],
    )
    data = base.model_dump(mode="json")
    paper = run_config(data, "prioritized", seed=3, budget=1000, eval_points=4, out_dir=tmp_path)
    assert preset_of(paper) == "prioritized" and "estimator" not in paper.sampler.options()  # the heap's own form
    assert paper.sampler.retest_every == 7 and paper.seed == 3 and paper.train.max_rollouts == 1000
    for name, overlay in PRESETS.items():
        cfg = run_config(data, name, seed=0, budget=1000, eval_points=4, out_dir=tmp_path)
        assert preset_of(cfg) == name and cfg.train.lr == base.train.lr
        if cfg.replay.kind == base.replay.kind:
            assert cfg.replay.options() == base.replay.options()
        assert all(get_key(cfg, k) == v for k, v in overlay.items())
    # a pass preset on a heap base: the heap's keys go, the shared ones stay
    heap = load_config(None, ["sampler.kind=experimental-prioritized", "sampler.estimator=beta", "sampler.floor=0.05"])
    cfg = run_config(heap.model_dump(mode="json"), "prioritized-pass", seed=0, budget=1000, eval_points=4,
                     out_dir=tmp_path)  # fmt: skip
    assert cfg.sampler.kind == "prioritized-pass" and "estimator" not in cfg.sampler.options()
    assert cfg.sampler.floor == 0.05


def _children(pid: int) -> set[int]:
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.add(int(stat.parent.name))
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_sigkill_of_compare_ends_its_workers(tmp_path):
    import os
    import signal
    import time

    cmd = [sys.executable, "-m", "priorl.cli", "compare", "--presets", "grpo,prioritized", "--seeds", "0,",
           "--budget", "100000", "--jobs", "2", "--out", str(tmp_path / "cmp"), "-c", "configs/demo.yaml",
           "--set", "train.batch_size=4", "--set", "generation.group_size=4",
           "--set", "eval.max_problems=8"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        workers: set[int] = set()
        while time.monotonic() < deadline and not list((tmp_path / "cmp").glob("eval/*/default/seed_0/metrics.jsonl")):
            time.sleep(0.5)
        workers = {w for w in _children(proc.pid) if "spawn_main" in Path(f"/proc/{w}/cmdline").read_text()}
        assert workers, "the comparison started no worker processes"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(Path(f"/proc/{w}").exists() for w in workers):
        time.sleep(0.5)
    alive = [w for w in workers if Path(f"/proc/{w}").exists() and "Z" not in Path(f"/proc/{w}/stat").read_text()]
    assert not alive, f"workers {alive} outlived their comparison"


def test_compare_finds_its_default_config_outside_a_clone(tmp_path):
    # run from a directory with no configs/: the shipped study config is the default (the run stops at the
    # missing baseline, after the config was read)
    proc = subprocess.run([sys.executable, "-m", "priorl.cli", "compare", "--presets", "adv-replay", "--seeds", "0,"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2 and "baseline 'grpo'" in proc.stderr and "does not exist" not in proc.stderr


def test_a_clones_study_configs_are_the_shipped_ones():
    from priorl.assets import CONFIGS, config_path

    root = Path(__file__).resolve().parents[2]
    for name in CONFIGS:
        assert (root / "configs" / f"{name}.yaml").resolve() == config_path(name).resolve()


def test_replay_that_cannot_act_is_refused_before_any_run_and_said_once_when_allowed(tmp_path):
    # replay that starts after the run's last step (2 steps, warm-up 5): the plan names it and compare refuses it
    args = (
        "compare", "--presets", "grpo,adv-replay", "--seeds", "0,1", "--budget", "32", "--eval-points", "1",
        "--out", str(tmp_path / "cmp"), "-c", "configs/demo.yaml", "--set", "train.batch_size=4",
        "--set", "generation.group_size=4", "--set", "eval.max_problems=8", "--set", "eval.samples=0",
        "--set", "replay.warmup_steps=5",
    )  # fmt: skip
    refused = cli(*args)
    text = " ".join(refused.stderr.split())
    assert refused.returncode == 2 and "replay.warmup_steps is 5" in text and "--allow-inactive" in text
    assert "a budget above 80 completions" in text  # 5 steps of 16
    assert not (tmp_path / "cmp" / "study.json").exists()  # before the first run
    proc = cli(*args, "--allow-inactive")
    assert proc.returncode == 0, proc.stderr
    assert " ".join(proc.stdout.split()).count("will not act (adv-replay): replay.warmup_steps is 5") == 1
    assert "warning (adv-replay" not in proc.stderr  # said in the plan, not again for each run
    report = (tmp_path / "cmp" / "report.md").read_text()
    assert "could not act within the budget" in report and "replay.warmup_steps is 5" in report
