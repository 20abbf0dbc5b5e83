"""Does bf16-mixed learn what float32 learns? Paired runs on the real model (issue 41, item 5).

grpo and adv-replay on configs/smollm2-study.yaml at their tuned rates (RESULTS.md round 8: grpo 5e-6, adv-replay
1e-5), at today's budget (1,024 completions, 16 steps), each seed once in float32 and once in bf16-mixed; held-out
pass@1 on the first 300 test problems at the end. The check: the paired difference of final accuracy
(bf16-mixed - float32, per preset, over the seeds) with its 95% t interval; "equal" means the interval lies within
+-3 points. Also per run: training seconds and evaluation seconds (summary.json), so the speed-up of whole runs.

    python benchmarks/precision_pair.py run --seeds 0-4 --out runs/precision-pair --jobs 2   # the runs (resumable)
    python benchmarks/precision_pair.py report runs/precision-pair > benchmarks/realmodel-precision/pair.json
    # the runs (logs only) are committed in benchmarks/realmodel-precision/pair-runs/: report reads them too

``run`` skips a run whose summary.json says finished, so it continues where a stop left it. Each run is
``priorl train`` in its own process with ``cores / jobs`` torch threads.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

RATES = {"grpo": "5e-6", "adv-replay": "1e-5"}
PRECISIONS = ("fp32", "bf16-mixed")


def run_dir(out: Path, preset: str, precision: str, seed: int) -> Path:
    return out / preset / precision / f"seed_{seed}"


def one_run(out: Path, preset: str, precision: str, seed: int, threads: int, budget: int) -> str:
    where = run_dir(out, preset, precision, seed)
    summary = where / "summary.json"
    if summary.is_file() and json.loads(summary.read_text()).get("status") == "finished":
        return f"{where}: done before"
    cmd = [
        sys.executable, "-m", "priorl.cli", "train", "-c", "configs/smollm2-study.yaml", "--preset", preset,
        "--set", f"seed={seed}", "--set", f"out_dir={where}", "--set", f"train.lr={RATES[preset]}",
        "--set", f"model.precision={precision}", "--set", f"train.max_rollouts={budget}",
        "--set", "train.max_steps=1000000", "--set", "eval.before=false", "--set", "eval.after=true",
        "--set", "eval.during=0", "--set", "eval.max_problems=300", "--set", "checkpoint.every=0",
        "--set", "logging.progress=false", "--overwrite",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    t0 = time.monotonic()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        return f"{where}: FAILED ({done.returncode}) {done.stderr[-500:]}"
    shutil_rm(where / "checkpoints")  # 1.6 GB of optimizer state per run; the logs are what the check reads
    return f"{where}: {time.monotonic() - t0:.0f} s"


def shutil_rm(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def parse_seeds(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            seeds += range(int(lo), int(hi) + 1)
        elif part:
            seeds.append(int(part))
    return seeds


def t_interval(values: list[float]) -> tuple[float, float | None, float | None]:
    """Mean and 95% t interval (the harness's t table, unbounded: a difference can be negative)."""
    from priorl.study.stats import t_interval as harness_t

    ci = harness_t(values, bounds=(-np.inf, np.inf))
    return float(np.mean(values)), *(ci if ci is not None else (None, None))


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def report(out: Path) -> dict:
    result: dict = {"budget_completions": None, "presets": {}}
    for preset in RATES:
        rows = {}
        for precision in PRECISIONS:
            for path in sorted((out / preset / precision).glob("seed_*/summary.json")):
                s = json.loads(path.read_text())
                if s.get("status") != "finished":
                    continue
                seed = int(path.parent.name.removeprefix("seed_"))
                metrics = [json.loads(line) for line in (path.parent / "metrics.jsonl").read_text().splitlines()]
                rows.setdefault(seed, {})[precision] = {
                    "final_accuracy": s["held_out"]["after"]["accuracy"],
                    "wall_seconds": s["wall_seconds"],
                    "train_seconds": sum(m["time/step"] for m in metrics),
                    "eval_seconds": s["wall_seconds"] - sum(m["time/step"] for m in metrics),  # the one evaluation
                    "precision_resolved": s.get("precision"),
                    "behavior_clip_fraction": float(np.mean([m.get("behavior_clip_fraction", 0.0) for m in metrics])),
                }
                result["budget_completions"] = s["budget"]["completions_generated"]
        paired = {k: v for k, v in rows.items() if len(v) == 2}
        diffs = [100 * (v["bf16-mixed"]["final_accuracy"] - v["fp32"]["final_accuracy"]) for v in paired.values()]
        speed = [v["fp32"]["train_seconds"] / v["bf16-mixed"]["train_seconds"] for v in paired.values()]
        eval_speed = [v["fp32"]["eval_seconds"] / v["bf16-mixed"]["eval_seconds"] for v in paired.values()]
        mean, lo, hi = t_interval(diffs) if diffs else (None, None, None)
        result["presets"][preset] = {
            "lr": RATES[preset],
            "seeds": sorted(paired),
            "per_seed": {str(k): v for k, v in sorted(rows.items())},
            "final_fp32_mean": _mean([v["fp32"]["final_accuracy"] for v in paired.values()]),
            "final_bf16_mean": _mean([v["bf16-mixed"]["final_accuracy"] for v in paired.values()]),
            "difference_points": {"mean": mean, "ci95": [lo, hi]},
            "equal_within_3_points": bool(diffs) and lo is not None and -3 <= lo and hi <= 3,
            "training_speedup_mean": float(np.mean(speed)) if speed else None,
            "evaluation_speedup_mean": float(np.mean(eval_speed)) if eval_speed else None,
        }
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--seeds", default="0-4")
    r.add_argument("--out", default="runs/precision-pair")
    r.add_argument("--jobs", type=int, default=2)
    r.add_argument("--budget", type=int, default=1024)
    r.add_argument("--presets", default="grpo,adv-replay")
    rep = sub.add_parser("report")
    rep.add_argument("out")
    args = ap.parse_args()
    if args.cmd == "report":
        print(json.dumps(report(Path(args.out)), indent=1))
        return
    out = Path(args.out)
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    # Seed by seed, float32 and bf16-mixed of a pair together, so a stop leaves whole pairs behind.
    work = [(p, prec, s) for s in parse_seeds(args.seeds) for p in args.presets.split(",") for prec in PRECISIONS]
    with ThreadPoolExecutor(args.jobs) as pool:
        for line in pool.map(lambda w: one_run(out, *w, threads, args.budget), work):
            print(line, flush=True)


if __name__ == "__main__":
    main()
