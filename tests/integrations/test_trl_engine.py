"""``train.engine: trl``: a run config trained by TRL's GRPOTrainer, logged like a priorl run, inside a study."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")

from priorl.config import load_config  # noqa: E402
from priorl.integrations.trl_engine import EngineStopped, check_trl_config, generations, train_with_trl  # noqa: E402
from priorl.presets import preset_config

TINY = [
    "train.engine=trl", "train.batch_size=8", "generation.group_size=4", "train.updates_per_step=2",
    "train.max_rollouts=128", "train.lr=3e-4", "eval.max_problems=32", "eval.every_rollouts=64",
    "checkpoint.every=0",
]  # fmt: skip
REPLAY = ["replay.warmup_steps=1", "replay.tau_max=2"]


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "priorl.cli", *args], capture_output=True, text=True, timeout=600)


def test_refuses_what_trl_cannot_run_by_name():
    cfg = load_config("configs/study.yaml", overrides=["train.engine=trl", "generation.stop=[x]"])
    with pytest.raises(ValueError, match="generation.stop"):
        check_trl_config(cfg)
    bad = ["train.engine=trl", "dynamic_sampling.enabled=true", "train.updates_per_step=3"]
    cfg = load_config("configs/study.yaml", overrides=bad)
    with pytest.raises(ValueError, match=r"dynamic_sampling.*updates_per_step \(3\)"):
        check_trl_config(cfg)
    assert generations(load_config("configs/study.yaml")) == 40  # 20,480 completions / (64 x 8)


@pytest.mark.parametrize("replay", ["adv", "none"])
def test_trl_run_logs_like_a_priorl_run(tmp_path, replay):
    preset = "adv-replay" if replay == "adv" else "grpo"
    extra = REPLAY if replay == "adv" else []
    cfg = preset_config("configs/study.yaml", overrides=[*TINY, *extra, f"out_dir={tmp_path / 'r'}"], preset=preset)
    seen = []
    summary = train_with_trl(cfg, on_step=lambda k, m: seen.append(k))
    assert summary["status"] == "finished" and summary["engine"] == "trl"
    metrics = read(tmp_path / "r/metrics.jsonl")
    assert seen == [1, 2, 3, 4] and [m["rollouts_generated"] for m in metrics] == [32, 64, 96, 128]
    assert all(m["n_fresh"] == 32 and 0 <= m["informative_fraction"] <= 1 and m["time/step"] > 0 for m in metrics)
    replayed = [m["n_replayed"] for m in metrics]
    if replay == "adv":  # replay from the second generation (warm-up 1), when the buffer has informative rows
        assert replayed[0] == 0 and sum(replayed) > 0 and "replay/size" in metrics[-1]
    else:
        assert replayed == [0, 0, 0, 0]
    assert all(m["tokens_trained"] >= m["tokens_generated"] - (metrics[i - 1]["tokens_generated"] if i else 0)
               for i, m in enumerate(metrics))  # fmt: skip
    evals = read(tmp_path / "r/eval.jsonl")
    assert [(e["step"], e["rollouts_generated"]) for e in evals] == [(0, 0), (2, 64), (4, 128)]
    assert all(e["num_problems"] == 32 and 0 <= e["accuracy"] <= 1 for e in evals)
    on_disk = json.loads((tmp_path / "r/summary.json").read_text())
    assert on_disk["status"] == "finished" and on_disk["wall_seconds"] > 0
    assert (tmp_path / "r/config.yaml").is_file()
    with pytest.raises(ValueError, match="already holds a run"):  # a run directory is never reused silently
        train_with_trl(cfg)


def test_trl_engine_under_bf16_mixed_keeps_float32_weights_and_records_it(tmp_path):
    from priorl.precision import fast_bf16

    if not fast_bf16(__import__("torch").device("cpu"))[0]:
        pytest.skip("this CPU has no fast bfloat16: bf16-mixed falls back to fp32 here")
    cfg = preset_config("configs/study.yaml", overrides=[*TINY, "model.precision=bf16-mixed", "train.max_rollouts=64",
                                                         f"out_dir={tmp_path / 'r'}"], preset="grpo")  # fmt: skip
    summary = train_with_trl(cfg)
    assert summary["status"] == "finished" and summary["precision"] == "bf16-mixed"
    assert summary["machine"]["precision"] == "bf16-mixed"
    assert [m["rollouts_generated"] for m in read(tmp_path / "r/metrics.jsonl")] == [32, 64]


def test_stop_ends_after_a_generation_without_a_summary(tmp_path):
    cfg = preset_config("configs/study.yaml", overrides=[*TINY, f"out_dir={tmp_path / 'r'}"], preset="grpo")
    with pytest.raises(EngineStopped, match="generation 2"):
        train_with_trl(cfg, stop=lambda: len(read(tmp_path / "r/metrics.jsonl")) >= 2)
    assert not (tmp_path / "r/summary.json").exists()  # unfinished: a study starts it over


def test_compare_runs_trl_arms_with_the_shared_statistics(tmp_path):
    out = tmp_path / "cmp"
    sets = [a for kv in TINY + REPLAY for a in ("--set", kv)]
    proc = cli(
        "compare", "-c", "configs/study.yaml", "--presets", "grpo,adv-replay", "--seeds", "0,1", "--budget", "128",
        "--eval-points", "2", "--jobs", "1", "--out", str(out), *sets,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    for preset in ("grpo", "adv-replay"):
        e = summary["presets"][preset]
        assert e["seeds_ok"] == 2 and e["tokens_trained_mean"] > 0 and e["train_seconds_mean"] > 0
        assert "0.9" in e["ratio_to_grpo"] or e["ratio_to_grpo"] == {}
    adv, grpo = summary["presets"]["adv-replay"], summary["presets"]["grpo"]
    assert adv["tokens_trained_mean"] > grpo["tokens_trained_mean"]  # the replayed rows
    assert json.loads((out / "eval/grpo/default/seed_0/summary.json").read_text())["engine"] == "trl"


def test_priorl_train_with_the_trl_engine(tmp_path):
    args = ["train", "-c", "configs/study.yaml", *[a for kv in TINY + REPLAY for a in ("--set", kv)]]
    proc = cli(*args, "--set", f"out_dir={tmp_path / 'r'}")
    assert proc.returncode == 0, proc.stderr
    assert "generation 4: 128 completions" in proc.stdout and "summary:" in proc.stdout
    proc = cli("train", "--resume", str(tmp_path / "r"))
    assert proc.returncode == 2 and "cannot be resumed" in proc.stderr and "Traceback" not in proc.stderr
