"""`priorl eval` of a run directory scores the run's last checkpoint the way the run itself evaluated it."""

import json
import os
import subprocess
import sys
from pathlib import Path

from priorl.grpo import checkpoint as ckpt
from priorl.grpo.trainer import Trainer
from priorl.presets import preset_config


def test_eval_of_a_run_directory_reads_the_runs_config(tmp_path):
    # Settings that differ from `priorl eval`'s own defaults (numeric verifier, 16 tokens, builtin:arithmetic-test,
    # every problem): the exact verifier, 5 tokens, a 30-problem split of the training file, 12 evaluated.
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"prompt": f"{a}+{b}=", "answer": str(a + b)}) + "\n"
                             for a in range(1, 16) for b in range(1, 21)))  # fmt: skip
    cfg = preset_config(None, [
        f"data.train={train}", "data.test=auto", "data.test_fraction=0.1", "data.level_key=null",
        "verifier.name=exact", "generation.group_size=4", "generation.max_new_tokens=6", "train.batch_size=4",
        "train.max_steps=2", "train.lr=1e-3", "eval.before=false", "eval.during=0", "eval.max_new_tokens=5",
        "eval.max_problems=12", "logging.tensorboard=false", "logging.progress=false", f"out_dir={tmp_path / 'run'}",
    ], preset="grpo")  # fmt: skip
    trainer = Trainer(cfg)
    results = trainer.train()
    trainer.close()
    after = results["after"]
    proc = subprocess.run(
        [sys.executable, "-m", "priorl.cli", "eval", "--model", str(tmp_path / "run"), "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["num_problems"] == after["num_problems"] == 12
    assert out["accuracy"] == after["accuracy"] and out["mean_length"] == after["mean_length"]
    assert Path(out["model"]).parent == ckpt.list_checkpoints(tmp_path / "run")[-1]  # the last checkpoint's model


# ---------------------------------------------------------------- issue 32: eval of a study, one builder, one table

TINY = [
    "--batch-size", "4", "--group-size", "4", "--max-steps", "1", "--set", "generation.max_new_tokens=4",
    "--set", "eval.before=false", "--set", "eval.after=false", "--set", "eval.max_problems=6",
    "--set", "logging.tensorboard=false", "--set", "logging.progress=false",
]  # fmt: skip


def priorl(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2] / "src")  # this checkout, from any working directory
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "priorl.cli", *args], capture_output=True, text=True, timeout=600,
                          env=env)  # fmt: skip


def test_eval_helps_example_on_a_study_evaluates_each_run(tmp_path):
    # A study as `priorl compare` lays one out: study.json, then run directories, one level down or deeper.
    study = tmp_path / "demo"
    runs = {"grpo/seed_0": ("grpo", "0"), "tuning/adv-replay/lr=0.0001/seed_1": ("adv-replay", "1")}
    for rel, (preset, seed) in runs.items():
        proc = priorl("train", "--preset", preset, "--seed", seed, "--out", str(study / rel), *TINY)
        assert proc.returncode == 0, proc.stderr
    (study / "study.json").write_text(json.dumps({"inputs": {"presets": ["grpo", "adv-replay"], "seeds": [0, 1]}}))
    (study / "report.md").write_text("not a run\n")

    proc = priorl("eval", "--model", str(study), "--samples", "8", "--json")  # the example in `priorl eval --help`
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["study"] == str(study) and [r["run"] for r in out["runs"]] == sorted(runs)
    for r in out["runs"]:
        assert r["num_problems"] == 6 and r["step"] == 1 and 0 <= r["accuracy"] <= 1  # the run's own eval config
        assert r["avg_at_k"]["k"] == 8 and r["sampled"]["samples"] == 8
        assert Path(r["model"]) == ckpt.list_checkpoints(study / r["run"])[-1] / "model"
    # The same as evaluating the run directory alone.
    one = priorl("eval", "--model", str(study / "grpo" / "seed_0"), "--json")
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout)["accuracy"] == out["runs"][0]["accuracy"]
    assert "--samples 8 --json" in " ".join(priorl("eval", "--help").stdout.split())

    text = priorl("eval", "--model", str(study))
    assert text.returncode == 0, text.stderr
    for rel in runs:  # a table per run, then a row per run
        assert f"{rel} at step 1 on the run's held-out set" in text.stdout
        assert text.stdout.count(rel) == 2
    # A run without a checkpoint (a study still running) is named, the others still evaluated.
    (study / "grpo" / "seed_2").mkdir()
    (study / "grpo" / "seed_2" / "config.yaml").write_text((study / "grpo" / "seed_0" / "config.yaml").read_text())
    (study / "grpo" / "seed_2" / "run.json").write_text("{}")
    partial = priorl("eval", "--model", str(study), "--json", "--max-problems", "2")
    assert partial.returncode == 0, partial.stderr
    entries = {r["run"]: r for r in json.loads(partial.stdout)["runs"]}
    assert "no complete checkpoint" in entries["grpo/seed_2"]["error"] and entries["grpo/seed_0"]["num_problems"] == 2
    empty = tmp_path / "empty"
    (empty / "x").mkdir(parents=True)
    (empty / "study.json").write_text("{}")
    proc = priorl("eval", "--model", str(empty))
    assert proc.returncode == 2 and "no run directories" in proc.stderr and "Traceback" not in proc.stderr


def test_eval_and_train_tables_without_levels_show_no_none(tmp_path):
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"prompt": f"{a}+{b}=", "answer": str(a + b)}) + "\n"
                             for a in range(1, 11) for b in range(1, 11)))  # fmt: skip
    proc = priorl("train", "--data", str(train), "--out", str(tmp_path / "run"), *TINY, "--set", "eval.after=true")
    assert proc.returncode == 0, proc.stderr
    assert "held-out accuracy" in proc.stdout and "None" not in proc.stdout
    for args in (["--model", str(tmp_path / "run")], ["--model", "builtin:tiny-arith", "--data", str(train),
                                                      "--max-problems", "5"]):  # fmt: skip
        proc = priorl("eval", *args)
        assert proc.returncode == 0, proc.stderr
        assert "None" not in proc.stdout and "│ all" in proc.stdout, proc.stdout
    assert "on the run's held-out set, split" in priorl("eval", "--model", str(tmp_path / "run")).stdout


def test_the_cli_builds_no_model_stack_and_no_held_out_table_of_its_own():
    # priorl eval and the Trainer build their parts with the same builders (priorl.grpo.stack), and the held-out
    # tables of train and eval come from one place (priorl.eval.table): cli.py parses arguments and calls.
    import priorl.cli
    import priorl.grpo.model_eval
    import priorl.grpo.trainer

    cli_source = Path(priorl.cli.__file__).read_text()
    built_elsewhere = ("HFGenerator", "make_verifier", "load_policy", "load_tokenizer", "PromptFormatter")
    for name in (*built_elsewhere, 'add_column("level")'):
        assert name not in cli_source, name
    for module in (priorl.grpo.trainer, priorl.grpo.model_eval):
        source = Path(module.__file__).read_text()
        assert "build_policy(" in source and "build_generator(" in source and "build_verifier(" in source
        assert "HFGenerator(" not in source and "make_verifier(" not in source
