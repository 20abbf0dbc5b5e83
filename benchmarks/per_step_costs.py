"""Per-step costs that grow with the number of problems M (issue 22): the trainer's undo snapshot.

Before each step the trainer takes a snapshot that lets a signal drop the step before its update. Until round 6
it held ``sampler.state_dict()`` (a walk over all M problems); now it holds the step, the counters and the global
RNG states, since the sampler is only drawn from before the droppable part and fed after it. This times, per
sampler kind and M, one step's own sampler work (sample B, observe B groups of 8), the old snapshot and the new
one, in one run, and prints JSON:

    python benchmarks/per_step_costs.py [--sizes 10000,1000000] [--batch 512] [--steps 20]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from priorl.grpo.checkpoint import capture_rng
from priorl.sampling import PrioritizedPassSampler, PrioritizedSampler, UniformSampler

KINDS = {"uniform": UniformSampler, "pass": PrioritizedPassSampler, "heap": PrioritizedSampler}


def run(kind: str, m: int, batch: int, steps: int) -> dict:
    rng = np.random.default_rng(0)
    sampler = KINDS[kind](m, seed=0)
    counters = {"rollouts_generated": 0, "tokens_generated": 0, "nonfinite_skipped": 0}
    times: dict[str, list[float]] = {"step_ms": [], "old_snapshot_ms": [], "new_snapshot_ms": []}
    for _ in range(steps):
        t0 = time.perf_counter()
        ids = sampler.sample(batch)
        sampler.observe(ids, (rng.random((len(ids), 8)) < 0.5).astype(float))
        t1 = time.perf_counter()
        old = {"sampler": sampler.state_dict(), "counters": dict(counters), "rng": capture_rng()}
        t2 = time.perf_counter()
        new = {"counters": dict(counters), "rng": capture_rng()}
        t3 = time.perf_counter()
        del old, new
        times["step_ms"].append((t1 - t0) * 1e3)
        times["old_snapshot_ms"].append((t2 - t1) * 1e3)
        times["new_snapshot_ms"].append((t3 - t2) * 1e3)
    out = {"kind": kind, "num_problems": m, "batch": batch}
    out.update({k: round(float(np.median(v)), 4) for k, v in times.items()})
    out["old_over_new"] = round(out["old_snapshot_ms"] / out["new_snapshot_ms"], 1)
    out["old_snapshot_over_step"] = round(out["old_snapshot_ms"] / out["step_ms"], 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,1000000")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    rows = [run(k, int(m), args.batch, args.steps) for m in args.sizes.split(",") for k in KINDS]
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
