"""`priorl eval` of a run directory scores the run's last checkpoint the way the run itself evaluated it."""

import json
import subprocess
import sys
from pathlib import Path

from priorl.config import load_config
from priorl.grpo import checkpoint as ckpt
from priorl.grpo.trainer import Trainer


def test_eval_of_a_run_directory_reads_the_runs_config(tmp_path):
    # Settings that differ from `priorl eval`'s own defaults (numeric verifier, 16 tokens, builtin:arithmetic-test,
    # every problem): the exact verifier, 5 tokens, a 30-problem split of the training file, 12 evaluated.
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"prompt": f"{a}+{b}=", "answer": str(a + b)}) + "\n"
                             for a in range(1, 16) for b in range(1, 21)))  # fmt: skip
    cfg = load_config(None, [
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
