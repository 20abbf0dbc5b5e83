"""The pass sampler's options on a static population, against uniform and the paper's sampler (no model).

1,500 problems: 25% never solved (p = 0), 25% always solved (p = 1), 50% learnable with p uniform in
[0.05, 0.5]; halfway through (step 60 of 120) the never-solved quarter becomes learnable at p = 0.15. Batches
of 64 problems x 8 rollouts. Printed per sampler: the informative fraction (all steps, last 40), the budget
share of the late-learnable quarter after it turned learnable (uniform: 0.25), the solved quarter's share, the
most and the 99th-percentile visits per problem, and the least-visited learnable problem.

Then the parking check of tests/sampling/test_prioritized_pass.py, as figures: 1,000 problems (25% p = 0, 25% p = 1,
50% learnable, p uniform in [0.05, 0.95]), a budget of 5 groups per problem; the share of learnable problems
whose priority ends at or below the median never-solved problem's (pass sampler), or that sit in the unsolved
pool (the paper's sampler).

    python benchmarks/static_population.py [--seed 1]       # about 1 minute
"""

import argparse

import numpy as np

from priorl import PrioritizedPassSampler, PrioritizedSampler, UniformSampler
from priorl.sampling.experimental import ExperimentalPrioritizedSampler, VariancePassSampler


def run(sampler, seed=1, steps=120):
    rng = np.random.default_rng(seed)
    p = np.concatenate([np.ones(375), np.zeros(375), rng.uniform(0.05, 0.5, 750)])
    informative, late, visits = [], 0, np.zeros(1500)
    for t in range(steps):
        if t == 60:
            p[375:750] = 0.15
        ids = np.asarray(sampler.sample(64))
        visits[ids] += 1
        if t >= 60:
            late += int(np.sum((ids >= 375) & (ids < 750)))
        r = (rng.random((64, 8)) < p[ids, None]).astype(float)
        sampler.observe(ids.tolist(), r)
        informative.append(np.mean(r.max(1) > r.min(1)))
    return (
        f"informative {np.mean(informative):.3f} (last 40 steps {np.mean(informative[-40:]):.3f})  "
        f"late-learnable share {late / (60 * 64):.3f}  solved share {visits[:375].sum() / visits.sum():.3f}  "
        f"visits max {visits.max():.0f} p99 {np.percentile(visits, 99):.0f}  "
        f"least-visited learnable {visits[750:].min():.0f}"
    )


def parked(seed: int) -> str:
    rng = np.random.default_rng(seed)
    m, b, g = 1000, 50, 8
    p = np.concatenate([np.zeros(250), np.ones(250), rng.uniform(0.05, 0.95, 500)])
    samplers = {"pass": PrioritizedPassSampler(m, seed=seed), "paper": PrioritizedSampler(m, seed=seed)}
    streams = {name: np.random.default_rng(seed + 100) for name in samplers}
    for _ in range(5 * m // b):
        for name, sampler in samplers.items():
            ids = sampler.sample(b)
            sampler.observe(ids, (streams[name].random((b, g)) < p[ids, None]).astype(float))
    pri = samplers["pass"].priorities(np.arange(m))
    pass_parked = float(np.mean(pri[500:] <= np.median(pri[:250])))
    paper_parked = float(np.mean(samplers["paper"]._pools.status[500:] == 3))  # 3: the unsolved pool
    return f"learnable problems parked after 5 groups per problem: pass {pass_parked:.1%}, paper {paper_parked:.1%}"


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1, help="1: the seed the options were chosen on")
    seed = ap.parse_args().seed
    print("uniform                    ", run(UniformSampler(1500), seed))
    print("paper (heap, last, greedy) ", run(PrioritizedSampler(1500), seed))
    print(
        "beta + thompson            ",
        run(ExperimentalPrioritizedSampler(1500, estimator="beta", selection="thompson"), seed),
    )
    for priority in ("informative", "variance"):
        for decay in (0.5, 0.8, 1.0):
            for alpha in (2, 4, 8):
                make = VariancePassSampler if priority == "variance" else PrioritizedPassSampler
                s = make(1500, decay=decay, selection_exponent=alpha)
                print(f"pass {priority[:4]} decay={decay} alpha={alpha}", run(s, seed))
    for k in range(3):
        print(f"seed {seed + k}:", parked(seed + k))
