"""Issue 22: the update's time (``time/update`` of ``Trainer.train_step``) before and after round 6, in one run.

Runs the same short training on builtin:tiny-arith with the code of two checkouts (``--before``: a source tree,
e.g. a ``git worktree`` of the commit before round 6; ``--after``: this one), alternating, in subprocesses, and
prints JSON: the median update time of each, their ratio, and whether the two runs' losses, gradient norms and
clip statistics are identical step by step (same seed, so they must be):

    git worktree add --detach /tmp/r6-before f6edb74
    OMP_NUM_THREADS=1 python benchmarks/update_time.py --before /tmp/r6-before/src --after src
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, torch
torch.set_num_threads(1)
from priorl.presets import preset_config
from priorl.config import load_config
from priorl.grpo.trainer import Trainer
out_dir, steps = sys.argv[1], int(sys.argv[2])
overrides = [
    "model.path=builtin:tiny-arith", f"out_dir={out_dir}", "generation.group_size=8", "generation.max_new_tokens=16",
    "train.batch_size=16", f"train.max_steps={steps}", "train.micro_batch_size=32", "train.updates_per_step=2",
    "eval.before=false", "eval.after=false", "eval.during=0", "logging.tensorboard=false", "logging.progress=false",
    "checkpoint.every=0",
]
trainer = Trainer(preset_config(None, overrides, preset="grpo"), overwrite=True)
rows = []
trainer.train(lambda step, m: rows.append({k: m[k] for k in KEYS}))
trainer.close()
print(json.dumps(rows))
""".replace("KEYS", repr(["time/update", "loss", "grad_norm", "clip_fraction", "ratio_mean", "ratio_max",
                          "behavior_logprob_gap", "tokens_forwarded"]))  # fmt: skip


def run(src: str, steps: int) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": os.path.abspath(src)}
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, "-c", CHILD, f"{tmp}/run", str(steps)], env=env, check=True,
                              capture_output=True, text=True)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", default="src")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    times: dict[str, list[float]] = {"before": [], "after": []}
    last: dict[str, list[dict]] = {}
    for _ in range(args.runs):
        for name in ("before", "after"):
            rows = run(getattr(args, name), args.steps)
            times[name] += [r["time/update"] for r in rows[1:]]  # the first step warms up
            last[name] = rows
    strip = [{k: v for k, v in r.items() if k != "time/update"} for r in last["before"]]
    same = strip == [{k: v for k, v in r.items() if k != "time/update"} for r in last["after"]]
    ms = {k: round(1e3 * statistics.median(v), 2) for k, v in times.items()}
    print(json.dumps({
        "model": "builtin:tiny-arith", "device": "cpu", "rollouts_per_step": 16 * 8, "micro_batch_size": 32,
        "updates_per_step": 2, "timed_steps": len(times["after"]), "median_update_ms": ms,
        "before_over_after": round(ms["before"] / ms["after"], 3), "identical_statistics": same,
        "first_steps": {"before": last["before"][:2], "after": last["after"][:2]},
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
