"""Per-preset details behind the analysis in RESULTS.md, read from a `priorl compare` output directory.

    python benchmarks/compare_details.py runs/c-default            # a markdown table
    python benchmarks/compare_details.py runs/c-default --json     # everything, as JSON

For each preset's evaluation runs (a tuned study's `eval/PRESET/CELL/seed_S`, or an untuned study's
`PRESET/seed_S`), averaged over its seeds: the informative fraction of the generated groups over all steps and
the last 10, where the generation went (visits per problem: the 99th percentile and the maximum, problems never
generated; the budget share per level, every generated group counted, kept or not), the number of training steps
the budget bought, the final held-out accuracy by level, and the update's work per run (`tokens_forwarded`: the
tokens of rows with a nonzero advantage, which the update forwards; `time/update`). All of it is read from each
run's metrics.jsonl (the trainer's `coverage/*` and `sampler/*` metrics) and eval.jsonl. Under uniform sampling
the sampler's pools are bookkeeping.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from statistics import mean

POOL_KEYS = ("active", "solved", "unsolved", "forgetting_total", "breakthroughs_total")


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _levels(run_dir: Path) -> list | None:
    """Each training problem's level, as the run numbered them (after data.levels), or None."""
    import yaml

    from priorl.data import load_problems

    data = yaml.safe_load((run_dir / "config.yaml").read_text())["data"]
    keys = {k: data[k] for k in ("prompt_key", "answer_key", "level_key") if k in data}
    problems = load_problems(data["train"], **keys)
    if data.get("levels"):
        problems = [p for p in problems if p.level in data["levels"]]
    if data.get("test") == "auto" and not data["train"].startswith("builtin:"):
        return None  # a held-out split renumbers the problems; not needed for the builtin study
    return [p.level for p in problems]


def _avg(values: list[float], digits: int = 3) -> float | None:
    return round(mean(values), digits) if values else None


def preset_details(seed_dirs: list[Path]) -> dict:
    """The details of one preset, averaged over the finished runs in ``seed_dirs``."""
    runs = [d for d in seed_dirs if (d / "summary.json").exists()]  # finished runs only
    acc_by_level: dict[str, list[float]] = {}
    share: dict[str, list[float]] = {}
    informative, late, steps, p99, top, never, forwarded, update_s = [], [], [], [], [], [], [], []
    pools: dict[str, list[float]] = {k: [] for k in POOL_KEYS}
    for run in runs:
        metrics = _lines(run / "metrics.jsonl")
        last = metrics[-1]
        for level, row in _lines(run / "eval.jsonl")[-1].get("by_level", {}).items():
            acc_by_level.setdefault(level, []).append(row["accuracy"])
        informative.append(mean(m["informative_fraction"] for m in metrics))
        late.append(mean(m["informative_fraction"] for m in metrics[-10:]))
        steps.append(last["step"])
        if all("tokens_forwarded" in m for m in metrics):  # the update's work: rows with a nonzero advantage
            forwarded.append(sum(m["tokens_forwarded"] for m in metrics))
            update_s.append(sum(m.get("time/update", 0.0) for m in metrics))
        p99.append(last.get("coverage/p99_visits", float("nan")))
        top.append(last.get("coverage/max_visits", float("nan")))
        never.append(last.get("coverage/never_visited", float("nan")))
        for key, value in last.items():
            if key.startswith("coverage/share_level_"):
                share.setdefault(key.removeprefix("coverage/share_level_"), []).append(value)
        for key in POOL_KEYS:
            if f"sampler/{key}" in last:
                pools[key].append(last[f"sampler/{key}"])
    return {
        "seeds": len(runs),
        "steps": _avg(steps, 1),
        "informative_fraction": _avg(informative),
        "informative_fraction_last_10_steps": _avg(late),
        "p99_visits": _avg(p99, 1),
        "max_visits": _avg(top, 1),
        "never_visited": _avg(never, 1),
        "tokens_forwarded_per_run": _avg(forwarded, 0),
        "update_seconds_per_run": _avg(update_s, 1),
        "budget_share_by_level": {k: _avg(v) for k, v in sorted(share.items())},
        "final_accuracy_by_level": {k: _avg(v) for k, v in sorted(acc_by_level.items())},
        "final_pools": {k: _avg(v, 1) for k, v in pools.items() if v},
    }


def chosen_cell_runs(preset_dir: Path, summary: Path) -> list[Path]:
    """The seed directories of the setting the study chose for this preset.

    A study grown with `--resume` keeps the evaluation runs of settings chosen before the growth beside the new
    choice, so the cell is read from summary.json (its eval runs' ``cell``); without it, more than one cell is an
    error rather than a silent mix of settings.
    """
    cells = sorted(d for d in preset_dir.iterdir() if d.is_dir())
    chosen: set[str] = set()
    if summary.exists():
        for runs in json.loads(summary.read_text()).get("runs", {}).values():
            for run in runs:
                cell = Path(run.get("dir", "")).parent
                if run.get("phase") == "eval" and cell.parent.name == preset_dir.name:
                    chosen.add(cell.name)
    picked = [c for c in cells if c.name in chosen]
    if not picked:
        if len(cells) > 1:
            sys.exit(
                f"{preset_dir}: evaluation runs of {len(cells)} settings ({', '.join(c.name for c in cells)}) and "
                f"no summary.json naming the chosen one; finish the study (`priorl compare --resume`) first"
            )
        picked = cells
    return sorted(run for cell in picked for run in cell.glob("seed_*"))


def study_details(root: Path) -> dict[str, dict]:
    """``{preset: details}`` for the evaluation runs of the study in ``root``."""
    eval_dir = root / "eval"
    study, summary = root / "study.json", root / "summary.json"
    if eval_dir.is_dir():  # a tuned study: eval/PRESET/CELL/seed_S
        presets = {p.name: chosen_cell_runs(p, summary) for p in sorted(eval_dir.iterdir()) if p.is_dir()}
    else:  # an untuned study: PRESET/seed_S
        presets = {p.name: sorted(p.glob("seed_*")) for p in sorted(root.iterdir()) if p.is_dir()}
    if study.exists():  # a tuned study names its presets in order
        order = list(json.loads(study.read_text())["inputs"]["presets"])
    else:
        order = list(json.loads(summary.read_text()).get("presets", {})) if summary.exists() else []
    dirs = {name.replace("+", "_"): name for name in order}  # a run directory spells '+' as '_'
    presets = {dirs.get(d, d): runs for d, runs in presets.items()}
    names = [n for n in order if n in presets] + [n for n in presets if n not in order]
    return {name: preset_details(presets[name]) for name in names if presets[name]}


def markdown(details: dict[str, dict]) -> str:
    """One row per preset: steps, informative fraction, visits, never generated, budget share per level; then, when
    the evaluations scored levels, the final held-out accuracy by level; and the update's work (tokens forwarded, the
    rows with a nonzero advantage, and update seconds, per run) when the logs have it."""
    levels = sorted({lvl for d in details.values() for lvl in d["budget_share_by_level"]}, key=str)
    head = ["preset", "seeds", "steps", "informative (all / last 10 steps)", "visits p99 / max", "never generated"]
    head += [f"budget L{lvl}" for lvl in levels]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, d in details.items():
        row = [
            name,
            str(d["seeds"]),
            f"{d['steps']:g}",
            f"{d['informative_fraction']:.1%} / {d['informative_fraction_last_10_steps']:.1%}",
            f"{d['p99_visits']:g} / {d['max_visits']:g}",
            f"{d['never_visited']:g}",
        ]
        row += [f"{d['budget_share_by_level'].get(lvl, 0):.1%}" for lvl in levels]
        lines.append("| " + " | ".join(row) + " |")
    if any(d.get("tokens_forwarded_per_run") for d in details.values()):  # the update's work, a third table
        lines += ["", "| preset | tokens forwarded by the update, per run | update time per run (s) |", "|---|---|---|"]
        for name, d in details.items():
            tokens, secs = d.get("tokens_forwarded_per_run"), d.get("update_seconds_per_run")
            tokens = "-" if tokens is None else f"{tokens:,.0f}"
            lines.append(f"| {name} | {tokens} | {'-' if secs is None else secs} |")
    acc_levels = sorted({lvl for d in details.values() for lvl in d["final_accuracy_by_level"]}, key=str)
    if acc_levels:  # the last table: the final held-out accuracy by level (the evaluation's by_level)
        head = ["preset", *(f"final accuracy L{lvl}" for lvl in acc_levels)]
        lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for name, d in details.items():
            acc = d["final_accuracy_by_level"]
            row = [name, *(f"{acc[lvl]:.1%}" if lvl in acc else "-" for lvl in acc_levels)]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="the --out directory of a `priorl compare` (its run directories are read)")
    parser.add_argument("--json", action="store_true", help="print every detail as JSON instead of the table")
    args = parser.parse_args(argv)
    root = Path(args.out)
    if not root.is_dir():
        sys.exit(f"{root}: no such directory; give the --out directory of a `priorl compare`")
    details = study_details(root)
    if not details:
        sys.exit(f"{root}: no finished evaluation runs found (eval/PRESET/CELL/seed_S or PRESET/seed_S)")
    print(json.dumps(details, indent=1) if args.json else markdown(details))


if __name__ == "__main__":
    main()
