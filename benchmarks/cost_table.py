"""The cost table: for each tuned study, what each preset buys and costs against tuned grpo.

    python benchmarks/cost_table.py NAME=STUDY_DIR [NAME=STUDY_DIR ...] [--target 0.9]

Reads each study's summary.json (written by ``priorl compare``; nothing is recomputed here) and prints one
markdown row per preset: its chosen settings, and the paired ratio to tuned grpo, with its 95% interval, of the
completions generated, the tokens trained and the training time (the logged ``time/step``) to the target, plus
final test accuracy. Completions are what a GPU user pays for where generation dominates a step; tokens trained
and training time are what a CPU user pays where the update does. Not a test: figures go to RESULTS.md with the
command next to them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _ratio(entry: dict | None) -> str:
    if not entry or entry.get("mean") is None:
        return "n/a"
    lo, hi = entry.get("ci95") or [None, None]
    fmt = lambda v: "beyond" if v is None else f"{v:.2f}"  # noqa: E731 - a censored end is beyond the budget
    bound = "<= " if entry.get("upper_bound") else ""  # grpo never reached the target: counted at the budget
    return f"{bound}{entry['mean']:.2f}x [{fmt(lo)}, {fmt(hi)}]"


def _final(e: dict) -> str:
    mean, ci = e.get("final_accuracy_mean"), e.get("final_accuracy_ci95")
    if mean is None:
        return "n/a"
    if not ci or ci[0] is None:
        return f"{100 * mean:.1f}%"
    return f"{100 * mean:.1f}% [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def rows(name: str, summary: dict, target: str) -> list[str]:
    out = []
    if target not in (summary.get("targets") or {}):  # e.g. absolute targets: the primary comparison's level
        target = (summary.get("primary") or {}).get("target") or target
    level = (summary.get("targets") or {}).get(target, {}).get("accuracy")
    head = f"{name} ({100 * level:.1f}%)" if level is not None else name
    for preset, e in summary["presets"].items():
        picked = (e.get("chosen") or {}).items()
        chosen = ", ".join(f"{k.split('.')[-1]} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in picked)
        chosen = chosen or "as configured (no tuning phase)"
        r = (e.get("ratio_to_grpo") or {}).get(target) or {}
        if preset == summary.get("baseline", "grpo"):
            c = (e.get("completions_to_target") or {}).get(target) or {}
            done = "1 (beyond the budget)" if c.get("mean") is None else f"1 ({c['mean']:,.0f} completions)"
            cells = [done, "1", "1"]
        else:
            cells = [_ratio(r.get("completions")), _ratio(r.get("tokens")), _ratio(r.get("wall"))]
        seeds = e.get("seeds_ok")
        out.append(f"| {head} | {preset} | {chosen} | {seeds} | " + " | ".join(cells) + f" | {_final(e)} |")
        head = ""
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("studies", nargs="+", help="NAME=DIR: a label and a priorl compare output directory")
    parser.add_argument("--target", default="0.9", help="target fraction key of summary.json (0.5, 0.75, 0.9)")
    args = parser.parse_args()
    print(f"| study (target: {args.target} of tuned grpo's gain) | preset | chosen | seeds | completions "
          "| tokens trained | training time | final accuracy [95%] |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for spec in args.studies:
        name, _, where = spec.partition("=")
        path = Path(where or name) / "summary.json"
        if not path.is_file():
            sys.exit(f"{path}: no summary.json (run priorl compare, or priorl compare --resume, first)")
        print("\n".join(rows(name if where else path.parent.name, json.loads(path.read_text()), args.target)))


if __name__ == "__main__":
    main()
