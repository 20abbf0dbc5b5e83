"""Completions to one validation target for every tuning cell of one or more `priorl compare` studies.

    python benchmarks/validation_at_target.py 0.925 runs/batch-b2/summary.json runs/batch-grpo/summary.json

Each study's own criterion target comes from its own tuned grpo, so two studies that tuned different grids are not
comparable by their reports' sensitivity tables. This reads every tuning cell's seed-mean validation curve from the
summaries (``tuning_curves``) and applies the harness's criterion (priorl.study.stats: first crossing, area as the
tie-breaker) at one absolute target, then prints each preset's best cell over all the studies given.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from priorl.study.stats import area, first_crossing, rank_key


def cells(summary_path: Path, target: float) -> list[tuple[str, str, float, float, float]]:
    """(preset, cell, completions to ``target`` (inf: never), area, final) for each tuning cell of one summary."""
    try:
        curves = json.loads(summary_path.read_text())["tuning_curves"]
    except (OSError, ValueError, KeyError) as exc:
        raise SystemExit(
            f"{summary_path}: no tuning curves to read ({exc!r}); is it a tuned study's summary.json?"
        ) from None
    x = np.asarray(curves["rollouts"], dtype=float)
    out = []
    for preset, by_cell in curves["by_preset"].items():
        for cell, y in by_cell.items():
            y = np.asarray(y, dtype=float)
            out.append((preset, cell, first_crossing(x, y, target), area(x, y), float(y[-1])))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("target", type=float, help="absolute validation accuracy, e.g. 0.925")
    ap.add_argument("summaries", nargs="+", type=Path, help="summary.json files of tuned studies")
    args = ap.parse_args()
    best: dict[str, tuple] = {}
    for path in args.summaries:
        for preset, cell, hit, auc, final in cells(path, args.target):
            shown = "never" if math.isinf(hit) else f"{hit:,.0f}"
            print(f"{preset:30s} {cell:42s} {shown:>8s}  area {auc:.3f}  final {final:.3f}")
            key = rank_key({"completions": None if math.isinf(hit) else hit, "auc": auc})
            if preset not in best or key < best[preset][0]:
                best[preset] = (key, cell, shown)
    print()
    for preset, (_, cell, shown) in best.items():
        print(f"best {preset:30s} {cell:42s} {shown:>8s}")


if __name__ == "__main__":
    main()
