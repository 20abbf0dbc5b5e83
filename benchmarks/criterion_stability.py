"""Which tuning criterion to trust (issue 42, item 2): how often each one's choice changes with the tuning seeds,
and what its choices cost on the test split.

Inputs: a tuned study with many tuning seeds (every preset at every grid value on each), and one untuned study per
grid value that ran every preset at that value on the evaluation seeds (so every possible choice has test runs):

    priorl compare -c configs/study-r7.yaml --presets grpo,adv-replay \\
        --grid train.lr=8e-5,1.6e-4,3.2e-4,6.4e-4,1.28e-3 --tune-seeds 100-105 --seeds 0-4 --jobs 2 --out runs/crit
    for lr in 8e-5 1.6e-4 3.2e-4 6.4e-4 1.28e-3; do
        priorl compare -c configs/study-r7.yaml --presets grpo,adv-replay --set train.lr=$lr --seeds 0-4 --jobs 2 \\
            --out runs/crit-test-$lr
    done
    python benchmarks/criterion_stability.py runs/crit --test runs/crit-test-{lr}

For each criterion (priorl.study.stats.CRITERIA) and each subset of 2 and of 3 tuning seeds (all of them), the
harness's own choice (priorl.study.runner.choose on that subset) per preset; reported: how often the choice differs
from the subset's most common choice ("changes"), the distinct choices, and the mean test completions to the
study's 90% target (its absolute accuracy, seed-mean curve over the evaluation seeds) of the rates chosen, over the
subsets. Prints JSON.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np

from priorl.study import load_study, make_plan, stats
from priorl.study.plan import cell_name, fmt_value
from priorl.study.records import read_run
from priorl.study.runner import choose


def tuning_records(out: Path, study: dict) -> tuple[dict, dict]:
    """The study's inputs and every finished tuning run's record, keyed as the harness keys them."""
    inputs = study["inputs"]
    plan = make_plan(inputs["base_config"], presets=inputs["presets"], seeds=inputs["seeds"], budget=inputs["budget"],
                     out=out, eval_points=inputs["eval_points"], grid=inputs["grid"], tune_seeds=inputs["tune_seeds"],
                     overrides=inputs["overrides"])  # fmt: skip
    records = {}
    for run in plan.tuning:
        if (run.dir / "summary.json").is_file():
            records[run.key] = {"seed": run.seed, **read_run(run.dir)}
    return inputs, records


def test_completions(pattern: str, presets: list[str], values: list, key: str, target: float, budget: int,
                     points: int, study: Path) -> dict:  # fmt: skip
    """(preset, value) -> mean test completions to ``target`` over the evaluation seeds (inf: never reached).

    A value's test runs come from its per-value study (PATTERN with {lr}) or, for a preset without one there, from
    the tuned study's own evaluation runs where it chose that value."""
    x = stats.grid(budget, points)
    out = {}
    for value in values:
        for preset in presets:
            folder = preset.replace("+", "_")
            root = Path(pattern.replace("{lr}", fmt_value(value)))
            found = sorted((root / "eval" / folder).glob("*/seed_*")) if root.is_dir() else []
            if not found:
                found = sorted((study / "eval" / folder).glob(f"{cell_name({key: value})}/seed_*"))
            runs = []
            for d in found:
                if (d / "summary.json").is_file():
                    runs.append({"seed": int(d.name.removeprefix("seed_")), **read_run(d)})
            c = stats.curves(x, runs)
            if c is None:
                continue
            hits = [stats.first_crossing(x, row, target) for row in c.acc]
            out[(preset, value)] = {
                "mean_curve": stats.first_crossing(x, c.acc.mean(axis=0), target),
                "seeds": len(hits),
                "censored": sum(1 for h in hits if math.isinf(h)),
            }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("study", help="the tuned study with many tuning seeds")
    ap.add_argument(
        "--test",
        default=None,
        help="the per-value test studies, {lr} standing for the value (optional: "
        "without them only the choices' stability is reported)",
    )
    ap.add_argument("--key", default="train.lr")
    args = ap.parse_args()
    out = Path(args.study)
    study = load_study(out)
    inputs, records = tuning_records(out, study)
    values = inputs["grid"][args.key]
    summary_path = out / "summary.json"
    target = json.loads(summary_path.read_text())["targets"]["0.9"]["accuracy"] if summary_path.is_file() else None
    test = (
        test_completions(
            args.test, inputs["presets"], values, args.key, target, inputs["budget"], inputs["eval_points"], out
        )
        if args.test
        else {}
    )
    seeds = inputs["tune_seeds"]
    tests = {f"{p} {args.key}={fmt_value(v)}": t for (p, v), t in test.items()}
    result: dict = {"study": str(out), "tune_seeds": seeds, "grid": {args.key: values}, "test_target": target,
                    "test": tests, "criteria": {}}  # fmt: skip
    for criterion in stats.CRITERIA:
        per_size = {}
        for size in sorted({2, 3, len(seeds)}):
            choices: dict[str, list] = {p: [] for p in inputs["presets"]}
            for subset in itertools.combinations(seeds, size):
                plan = make_plan(inputs["base_config"], presets=inputs["presets"], seeds=inputs["seeds"],
                                 budget=inputs["budget"], out=out, eval_points=inputs["eval_points"],
                                 grid=inputs["grid"], tune_seeds=list(subset), overrides=inputs["overrides"],
                                 criterion=criterion)  # fmt: skip
                sub = {k: v for k, v in records.items() if k[3] in subset}
                tuned = choose(plan, sub)
                for preset, cell in tuned["chosen"].items():
                    choices[preset].append(cell[args.key])
            entry = {}
            for preset, chosen in choices.items():
                counts = Counter(chosen)
                mode = counts.most_common(1)[0][0]
                # None when a chosen value has no test runs (a partial mean would favour the criterion)
                reached = [test[(preset, v)]["mean_curve"] for v in chosen] if all(
                    (preset, v) in test for v in chosen) else []  # fmt: skip
                entry[preset] = {
                    "subsets": len(chosen),
                    "choices": {fmt_value(v): n for v, n in sorted(counts.items())},
                    "changes": round(1 - counts[mode] / len(chosen), 3),
                    "test_completions_mean": float(np.mean(reached)) if reached and all(map(math.isfinite, reached))
                    else None,
                    "test_censored_share": round(sum(1 for r in reached if math.isinf(r)) / len(reached), 3)
                    if reached else None,
                }  # fmt: skip
            per_size[str(size)] = entry
        result["criteria"][criterion] = per_size
    result["note"] = "changes: share of subsets whose choice differs from the most common one"
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
