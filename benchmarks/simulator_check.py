"""Does the tag-learner simulator reproduce the testbed's ranking of grpo, prioritized and prioritized-beta?

The testbed (benchmarks/RESULTS.md, the study, 3 seeds) measured, in held-out accuracy:
- default mix, mid-budget (30,720 completions): prioritized 38.3 > prioritized-beta 33.9 > grpo 31.4;
  end (61,440): grpo 50.1 > prioritized 48.4 > prioritized-beta 41.6;
- low-waste mix, mid-budget: prioritized 29.0 > grpo 25.3 > prioritized-beta 24.6; end: grpo 65.5 >
  prioritized 44.4 > prioritized-beta 35.5.
This runs the simulator over a grid of its four rates and prints, per point, the simulated accuracies and
whether each ranking is reproduced.

    python benchmarks/simulator_check.py            # 24 grid points x 2 mixes x 3 samplers x 2 seeds, ~2 min
"""

import itertools

from priorl.bench.simulate_tags import TagLearner, run_tag_simulation

TESTBED = {  # mix -> (mid ranking, end ranking), best first
    "solved=0.25,unsolved=0.25": (
        ("prioritized", "experimental-beta", "grpo"),
        ("grpo", "prioritized", "experimental-beta"),
    ),
    "solved=0.05,unsolved=0.05": (
        ("prioritized", "grpo", "experimental-beta"),
        ("grpo", "prioritized", "experimental-beta"),
    ),
}
SHORT = {"grpo": "grpo", "prioritized": "prio", "experimental-beta": "beta"}
GRID = {
    "lr_tag": (0.005, 0.01, 0.02),
    "repeats_half": (0.5, 2.0),
    "lr_shared": (4e-5, 4e-4),
    "sigma": (0.3, 1.0),
}


def ranking(rows, key):
    return tuple(r["sampler"] for r in sorted(rows, key=lambda r: -r[key]))


def main() -> None:
    hits = {"mid": 0, "end": 0}
    points = list(itertools.product(*GRID.values()))
    for values in points:
        kw = dict(zip(GRID, values, strict=True))
        report = run_tag_simulation(seeds=2, mixes=((0.25, 0.25), (0.05, 0.05)), learner=TagLearner(**kw))
        rows = [r for r in report["results"] if r["sampler"] in ("grpo", "prioritized", "experimental-beta")]
        cells, ok = [], {"mid": True, "end": True}
        for mix, (mid, end) in TESTBED.items():
            mine = [r for r in rows if r["mix"] == mix]
            acc = {r["sampler"]: (r["mid"], r["final"]) for r in mine}
            ok["mid"] &= ranking(mine, "mid") == mid
            ok["end"] &= ranking(mine, "final") == end
            cells.append(" ".join(f"{SHORT[n]} {100 * a[0]:4.1f}/{100 * a[1]:4.1f}" for n, a in acc.items()))
        hits["mid"] += ok["mid"]
        hits["end"] += ok["end"]
        print(
            kw, " | ".join(cells), f"mid {'yes' if ok['mid'] else 'no'}, end {'yes' if ok['end'] else 'no'}", flush=True
        )
    print(f"rankings reproduced on both mixes: mid-budget {hits['mid']}/{len(points)}, end {hits['end']}/{len(points)}")


if __name__ == "__main__":
    main()
