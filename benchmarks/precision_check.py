"""Faithfulness and cost of bf16-mixed on the real model (issue 41): the first mini-batch's ratios before any update.

Runs configs/smollm2-study.yaml (grpo: no replay, so every row of the first mini-batch is fresh; evaluation and
checkpoints off) for ``--steps`` steps in each variant, from the same seed, and prints per variant the mean
``behavior_logprob_gap`` (|stored - recomputed| log-prob per token, nats), ``behavior_clip_fraction`` (tokens
whose ratio starts outside [1 - eps_low, 1 + eps_high] before any update) and the median seconds per phase:

- ``fp32``: float32 throughout (the reference: gap ~1e-6).
- ``bf16-head-bf16``: bf16-mixed with the output head left to autocast (bf16 logits): what the trap was.
- ``bf16-mixed``: bf16-mixed as shipped (output head, log-softmax and loss in float32; generation's log-probs).
- ``bf16-recompute``: bf16-mixed plus ``train.old_logprobs: recompute`` (a no-grad training forward in the
  update's own micro-batches).

    python benchmarks/precision_check.py --steps 3 > benchmarks/realmodel-throughput/precision_check.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from unittest import mock

from priorl.grpo.trainer import Trainer
from priorl.presets import preset_config

VARIANTS = {
    "fp32": ["model.precision=fp32"],
    "bf16-head-bf16": ["model.precision=bf16-mixed", "train.old_logprobs=behavior"],
    "bf16-mixed": ["model.precision=bf16-mixed", "train.old_logprobs=behavior"],
    "bf16-recompute": ["model.precision=bf16-mixed", "train.old_logprobs=recompute"],
}


def run_variant(name: str, steps: int, out_dir: str, extra: list[str]) -> dict:
    cfg = preset_config(
        "configs/smollm2-study.yaml",
        [f"out_dir={out_dir}/{name}", "eval.before=false", "eval.after=false", "logging.progress=false",
         "checkpoint.every=0", f"train.max_steps={steps}", *VARIANTS[name], *extra],
        preset="grpo",
    )  # fmt: skip
    patch = mock.patch("priorl.precision.keep_head_float32", lambda model: False) if name == "bf16-head-bf16" else None
    if patch:
        patch.start()
    try:
        trainer = Trainer(cfg, overwrite=True)
    finally:
        if patch:
            patch.stop()
    rows = []
    try:
        for _ in range(steps):
            trainer.step += 1
            m = trainer.train_step()
            rows.append(m)
            print(f"{name} step {trainer.step}: gap {m['behavior_logprob_gap']:.4f} clip "
                  f"{m['behavior_clip_fraction']:.4f} step {m['time/step']:.1f}s", file=sys.stderr)  # fmt: skip
    finally:
        trainer.close_logs()
        trainer.close()
    return {
        "precision": trainer.precision.name,
        "behavior_logprob_gap": statistics.mean(m["behavior_logprob_gap"] for m in rows),
        "behavior_clip_fraction": statistics.mean(m["behavior_clip_fraction"] for m in rows),
        "per_step": [
            {
                k: m[k]
                for k in (
                    "behavior_logprob_gap",
                    "behavior_clip_fraction",
                    "time/generate",
                    "time/update",
                    "time/step",
                    "tokens_forwarded",
                )
            }
            for m in rows
        ],  # fmt: skip
        "seconds_median": {k: statistics.median(m[f"time/{k}"] for m in rows) for k in ("generate", "update", "step")},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--out-dir", default="/tmp/priorl-precision")
    ap.add_argument("--set", action="append", default=[], help="extra config overrides")
    args = ap.parse_args()
    out = {"steps": args.steps, "config": "configs/smollm2-study.yaml", "preset": "grpo", "variants": {}}
    for name in args.variants.split(","):
        out["variants"][name] = run_variant(name, args.steps, args.out_dir, args.set)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
