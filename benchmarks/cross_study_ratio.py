"""Paired ratios between evaluation runs of two `priorl compare` studies, with the harness's own statistics.

    python benchmarks/cross_study_ratio.py runs/k-default:grpo-kofb runs/batch-grpo:grpo

The first argument is the arm, the second the baseline, each ``STUDY_DIR:PRESET`` (the preset's evaluation runs
at its chosen setting). Use it when a baseline was tuned in a study of its own, e.g. grpo tuned over the batch
size as well as the learning rate against the K-of-B step tuned elsewhere: both studies must share the budget,
the test split and the evaluation seeds (seeds are paired by number). The targets are the arm's study's
(absolute accuracies from its summary.json), so both arms are read at the same levels; completions to each
target and the paired ratio (BCa 95% over the shared seeds, the same code as `priorl compare`:
priorl.study.stats) are printed for completions, trained tokens and training time.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from compare_details import chosen_cell_runs  # this folder's script (run as a script: it is on sys.path)

from priorl.study import stats


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_arm(spec: str) -> tuple[Path, str, list[dict]]:
    """(study dir, preset, finished evaluation runs as the harness reads them) for ``STUDY_DIR:PRESET``: from the
    run directories when they are there, else from the per-seed curves the study's committed summary.json keeps
    (``runs``: each evaluation run's evaluations and step costs), so a study whose runs were not committed works."""
    study, sep, preset = spec.rpartition(":")
    if not sep:
        sys.exit(f"{spec!r}: expected STUDY_DIR:PRESET, e.g. runs/k-default:grpo-kofb")
    root = Path(study) / "eval" / preset.replace("+", "_")
    seeds = chosen_cell_runs(root, Path(study) / "summary.json") if root.is_dir() else []  # the chosen setting's
    runs = []
    for d in seeds:
        if (d / "summary.json").exists():
            seed = int(d.name.removeprefix("seed_"))
            runs.append({"seed": seed, "evals": _lines(d / "eval.jsonl"), "metrics": _lines(d / "metrics.jsonl")})
    if not runs:
        runs = committed_runs(Path(study), preset)
    if not runs:
        sys.exit(
            f"{spec}: no evaluation runs under {root} and none in {Path(study) / 'summary.json'} (a study's "
            "summary keeps its runs' curves from priorl 0.1 round 10 on)"
        )
    return Path(study), preset, runs


def committed_runs(study: Path, preset: str) -> list[dict]:
    """The finished evaluation runs of ``preset`` as its study's summary.json records them (``[]`` when the summary
    predates per-seed curves or is missing)."""
    try:
        summary = json.loads((study / "summary.json").read_text())
    except (OSError, ValueError):
        return []
    runs = (summary.get("runs") or {}).get(preset) or []
    return [
        {"seed": r["seed"], "evals": r["evals"], "metrics": r.get("metrics") or []}
        for r in runs
        if r.get("status") == "finished" and r.get("evals")
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("arm", help="STUDY_DIR:PRESET of the arm")
    parser.add_argument("baseline", help="STUDY_DIR:PRESET of the baseline")
    args = parser.parse_args(argv)
    (study_a, name_a, runs_a), (study_b, name_b, runs_b) = load_arm(args.arm), load_arm(args.baseline)
    sa, sb = (json.loads((s / "summary.json").read_text()) for s in (study_a, study_b))
    if sa["budget"] != sb["budget"]:
        sys.exit(f"budgets differ: {sa['budget']} ({study_a}) and {sb['budget']} ({study_b})")
    x = stats.grid(sa["budget"], max(sa["eval_points"], sb["eval_points"]))
    a, b = stats.curves(x, runs_a), stats.curves(x, runs_b)
    shared = sorted(set(a.seeds) & set(b.seeds))
    print(f"{name_a} ({study_a}, seeds {a.seeds}) against {name_b} ({study_b}, seeds {b.seeds}); paired on {shared}")
    rng = np.random.default_rng(0)
    for key, target in sa["targets"].items():
        level = target["accuracy"]
        ta, tb = stats.to_target(a, level, rng=rng), stats.to_target(b, level, rng=rng)
        r = stats.ratio_to_baseline(a, b, level, rng=rng)

        def fmt(entry: dict) -> str:
            ci = entry.get("ci95") or [None, None]
            show = [f"{v:.2f}" if v is not None else "beyond" for v in ci]
            bound = "<= " if entry.get("upper_bound") else ""
            mean = f"{entry['mean']:.2f}x" if entry["mean"] is not None else "n/a"
            return f"{bound}{mean} [{show[0]}, {show[1]}]"

        def done(t: dict) -> str:
            return f"{t['mean']:,.0f}" if t["mean"] is not None else "beyond the budget"

        print(
            f"  target {key} ({level:.1%}): {name_a} {done(ta)}, {name_b} {done(tb)} completions; ratio: completions "
            f"{fmt(r['completions'])}, trained tokens {fmt(r['tokens'])}, training time {fmt(r['wall'])}"
        )


if __name__ == "__main__":
    main()
