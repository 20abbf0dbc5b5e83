"""Issue 22, dynamic sampling: the per-step cost of being able to drop a step, state_dict against undo_mark.

One run times both ways on the same sampler states (see :func:`priorl.bench.sampler.run_undo_bench`) and prints
JSON rows:

    OMP_NUM_THREADS=1 python benchmarks/sampler_undo.py --sizes 10000,1000000 \
        > benchmarks/per-step-costs/sampler_undo.json
"""

from __future__ import annotations

import argparse
import json

from priorl.bench.sampler import run_undo_bench


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,1000000")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    print(json.dumps(run_undo_bench(sizes, batch_size=args.batch, rounds=args.rounds, steps=args.steps), indent=1))


if __name__ == "__main__":
    main()
