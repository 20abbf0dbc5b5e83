"""Where a bf16-mixed step on the real model spends its time (issue 41): torch profiler tables of one step's
generation and update, configs/smollm2-study.yaml, grpo, after one warm-up step.

    python benchmarks/precision_profile.py --precision bf16-mixed > benchmarks/realmodel-precision/profile_bf16.txt
"""

from __future__ import annotations

import argparse

from torch.profiler import ProfilerActivity, profile

from priorl.grpo.trainer import Trainer
from priorl.presets import preset_config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--precision", default="bf16-mixed")
    ap.add_argument("--old-logprobs", default="auto")
    ap.add_argument("--rows", type=int, default=14)
    args = ap.parse_args()
    cfg = preset_config(
        "configs/smollm2-study.yaml",
        ["out_dir=/tmp/priorl-precision-profile", "eval.before=false", "eval.after=false", "logging.progress=false",
         "checkpoint.every=0", "train.max_steps=3", f"model.precision={args.precision}",
         f"train.old_logprobs={args.old_logprobs}"],
        preset="grpo",
    )  # fmt: skip
    trainer = Trainer(cfg, overwrite=True)
    trainer.step += 1
    trainer.train_step()  # warm-up
    generate, update = trainer.generator.generate, trainer._update
    tables = {}

    def profiled(name, fn):
        def wrapper(*a, **k):
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                out = fn(*a, **k)
            tables[name] = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows)
            return out

        return wrapper

    trainer.generator.generate = profiled("generate", generate)
    trainer._update = profiled("update", update)
    trainer.step += 1
    m = trainer.train_step()
    trainer.close_logs()
    trainer.close()
    print(
        f"precision {trainer.precision.name}, old log-probs "
        f"{'recomputed' if trainer.recompute_old_logprobs else 'behavior'}"
    )
    print(f"step {m['time/step']:.2f} s: generate {m['time/generate']:.2f} s, update {m['time/update']:.2f} s, "
          f"{m['tokens_forwarded']} tokens forwarded, {m['n_fresh']} rollouts")  # fmt: skip
    for name, table in tables.items():
        print(f"\n== {name} ==\n{table}")


if __name__ == "__main__":
    main()
