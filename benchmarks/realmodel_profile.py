"""Where a real-model GRPO step spends its time: priorl's trainer on SmolLM2-135M-Instruct (issue 20).

Runs configs/smollm2-study.yaml (uniform GRPO, evaluation and checkpoints off) for ``--warmup`` untimed and
``--steps`` profiled steps, and prints JSON: the step's split into generate / score / update / other, the
functions with the most own time (cProfile), and the padding waste of the training forward: the share of
padded positions in the micro-batches, in the shuffled order of the mini-batch and sorted by length (what the
trainer does), computed from the step's own rollouts.

    python benchmarks/realmodel_profile.py --steps 2 > benchmarks/realmodel-throughput/profile.json
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import time

import numpy as np

from priorl.grpo.trainer import Trainer
from priorl.presets import preset_config


def padding_share(rows, micro: int, *, sort: bool) -> float:
    """Padded share of the [rows, width] tensors the training forward builds for ``rows`` in micro-batches."""
    lengths = [len(r.prompt_ids) + len(r.completion_ids) for r in rows]
    if sort:
        lengths = sorted(lengths)
    real = padded = 0
    for start in range(0, len(lengths), micro):
        chunk = lengths[start : start + micro]
        real += sum(chunk)
        padded += max(chunk) * len(chunk)
    return 1.0 - real / padded if padded else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--out-dir", default="/tmp/priorl-profile")
    args = ap.parse_args()
    cfg = preset_config(
        "configs/smollm2-study.yaml",
        [f"out_dir={args.out_dir}", "eval.before=false", "eval.after=false", "eval.every=0",
         "logging.progress=false"],
        preset="grpo",
    )  # fmt: skip
    trainer = Trainer(cfg, overwrite=True)
    captured: list = []
    update = trainer._update

    def keep_batch(batch, *, n_fresh):
        captured.append(batch)
        return update(batch, n_fresh=n_fresh)

    trainer._update = keep_batch
    phases, waste = [], []
    profiler = cProfile.Profile()
    try:
        for i in range(args.warmup + args.steps):
            trainer.step += 1
            timed = i >= args.warmup
            t0 = time.perf_counter()
            if timed:
                profiler.enable()
            m = trainer.train_step()
            if timed:
                profiler.disable()
                dt = time.perf_counter() - t0
                split = {k: m[f"time/{k}"] for k in ("generate", "score", "update")}
                phases.append({**split, "other": dt - sum(split.values()), "step": dt})
                rows = [r for r in captured[-1] if len(r.completion_ids) and r.advantage != 0.0]
                micro = cfg.train.micro_batch_size
                order = np.random.default_rng(0).permutation(len(rows))
                shuffled = [rows[j] for j in order]
                waste.append(
                    {
                        "rows_forwarded": len(rows),
                        "rows_in_batch": len(captured[-1]),
                        "padding_shuffled": padding_share(shuffled, micro, sort=False),
                        "padding_sorted": padding_share(rows, micro, sort=True),
                    }
                )
    finally:
        trainer.close_logs()
        trainer.close()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.sort_stats("tottime").print_stats(args.top)
    top = []
    for (file, line, name), (_cc, nc, tt, ct, _) in sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[: args.top]:
        top.append({"function": f"{file.split('site-packages/')[-1]}:{line}({name})", "calls": nc,
                    "own_s": round(tt, 3), "cumulative_s": round(ct, 3)})  # fmt: skip
    print(json.dumps({"config": "configs/smollm2-study.yaml (preset grpo)", "steps": phases, "padding": waste,
                      "top_own_time": top}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
