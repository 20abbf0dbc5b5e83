"""The problem samplers by visits per problem (issue 44, part 2): one tuned `priorl compare` study per training-pool
size on the shipped testbed (configs/study-r7.yaml: 64 problems a step, 2,560 problem draws in the 20,480-completion
budget), then a confirmation of every winning cell on evaluation seeds that chose nothing.

  n1280   builtin:rules:n=1280, about 2 visits per problem
  n500    builtin:rules:n=500, about 5 (the testbed as shipped)
  n128    builtin:rules:n=128, about 20
  confirm each (pool, preset) whose completions to the 90% target, paired against that pool's grpo, has its 95%
          interval below 1: that preset and grpo at their chosen rates, on evaluation seeds 5-9

Each pool study runs grpo, prioritized-pass, prioritized (the paper's heap), adv-replay (for reference) and
prioritized-pass+adv-replay (do the two methods add up?), each tuned over the same four rates on tuning seeds 100-102
and evaluated on seeds 0-4. Each stage is one study in OUT/STAGE; a finished stage is read from its summary.json, a
stopped one resumed, so ``run`` continues across sessions.

    python benchmarks/visits_map.py run --out runs/visits-map --jobs 2     # about 3 h of 2 cores, confirm extra
    python benchmarks/visits_map.py plan --out runs/visits-map             # each stage's command, no runs
    python benchmarks/visits_map.py report runs/visits-map                 # the map for RESULTS.md
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from study_driver import cli, run_study  # this folder's script (run as a script: it is on sys.path)

CONFIG = "configs/study-r7.yaml"
TUNE_SEEDS = "100-102"
SEEDS = "0-4"
CONFIRM_SEEDS = "5-9"
RATES = (1.6e-4, 3.2e-4, 6.4e-4, 1.28e-3)
POOLS = {"n1280": 1280, "n500": 500, "n128": 128}
RUN_ORDER = ("n128", "n500", "n1280")  # most visits first: the regime the samplers are built for
DRAWS = 2560  # problem draws a run makes at the testbed's budget: 40 steps of 64 problems
PRESETS = ("grpo", "prioritized-pass", "prioritized", "adv-replay", "prioritized-pass+adv-replay")
SAMPLERS = ("prioritized-pass", "prioritized", "prioritized-pass+adv-replay")
TARGET = "0.9"
EARLY_TARGETS = ("0.5", "0.75")


def pool_args(pool: str) -> list[str]:
    """The `priorl compare` arguments of one pool's tuned study (without --out and --jobs)."""
    return [
        "-c", CONFIG, "--presets", ",".join(PRESETS), "--primary", "prioritized-pass",
        "--set", f"data.train=builtin:rules:n={POOLS[pool]}",
        "--grid", "train.lr=" + ",".join(f"{r:g}" for r in RATES),
        "--tune-seeds", TUNE_SEEDS, "--seeds", SEEDS,
    ]  # fmt: skip


def summary(out: Path, stage: str) -> dict | None:
    path = out / stage / "summary.json"
    return json.loads(path.read_text()) if path.exists() else None


def ratio(entry: dict, target: str = TARGET) -> dict | None:
    """The paired completions ratio to grpo at ``target`` (the 90% one unless given; mean, ci95, ...), or None
    when the study has none."""
    return ((entry.get("ratio_to_grpo") or {}).get(target) or {}).get("completions")


def wins(out: Path) -> list[tuple[str, str, float]]:
    """(pool, preset, chosen rate) of every sampler cell whose paired ratio's interval lies below 1."""
    found = []
    for pool in POOLS:
        s = summary(out, pool)
        if s is None:
            continue
        for preset in SAMPLERS:
            entry = s["presets"].get(preset) or {}
            r = ratio(entry)
            if r and r.get("ci95") and r["ci95"][1] is not None and r["ci95"][1] < 1:  # None: no upper end
                found.append((pool, preset, entry["chosen"]["train.lr"]))
    return found


def confirm_args(out: Path, pool: str, presets: list[str]) -> list[str]:
    """A confirmation study of ``presets`` on ``pool``, each (and grpo) at the rate the pool's study chose."""
    chosen = summary(out, pool)["presets"]
    sets = []
    for preset in ("grpo", *presets):
        sets += ["--set", f"{preset}:train.lr={chosen[preset]['chosen']['train.lr']:g}"]
    return [
        "-c", CONFIG, "--presets", ",".join(("grpo", *presets)), "--primary", presets[0],
        "--set", f"data.train=builtin:rules:n={POOLS[pool]}", *sets, "--seeds", CONFIRM_SEEDS,
    ]  # fmt: skip


def confirm_stages(out: Path) -> dict[str, list[str]]:
    """Per pool with a win, the confirmation study's arguments (its directory is OUT/confirm/POOL)."""
    by_pool: dict[str, list[str]] = {}
    for pool, preset, _ in wins(out):
        by_pool.setdefault(pool, []).append(preset)
    return {pool: confirm_args(out, pool, presets) for pool, presets in by_pool.items()}


def run(out: Path, jobs: int) -> int:
    for pool in RUN_ORDER:
        code = run_study(out / pool, pool_args(pool), jobs)
        if code != 0:
            return code
    for pool, args in confirm_stages(out).items():
        code = run_study(out / "confirm" / pool, args, jobs)
        if code != 0:
            return code
    return 0


def plan(out: Path) -> None:
    for pool in POOLS:
        print(f"{pool}: priorl compare {' '.join(pool_args(pool))} --out {out / pool} --jobs 2")
    if not all(summary(out, pool) for pool in POOLS):
        print("confirm: waits for every pool's study (it confirms the cells whose interval lies below 1)")
        return
    stages = confirm_stages(out)
    for pool, args in stages.items():
        print(f"confirm {pool}: priorl compare {' '.join(args)} --out {out / 'confirm' / pool} --jobs 2")
    if not stages:
        print("confirm: no sampler cell has its interval below 1; nothing to confirm")


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _eval_dirs(out: Path, pool: str, preset: str) -> list[Path]:
    """A pool study's evaluation run directories of ``preset`` (its chosen cell, every seed)."""
    return sorted((out / pool / "eval" / preset.replace("+", "_")).glob("*/seed_*"))


def _eval_metrics(run_dir: Path) -> dict[str, float]:
    """A run's sampler statistics over its training steps: mean informative fraction, the last step's coverage and
    its count of problems whose last group was all correct or all wrong (the heap parks these until a retest)."""
    rows = _jsonl(run_dir / "metrics.jsonl")
    last = rows[-1]
    return {
        "informative": statistics.fmean(r["informative_fraction"] for r in rows),
        "never_visited": last.get("coverage/never_visited", float("nan")),
        "max_visits": last.get("coverage/max_visits", float("nan")),
        "at_0_or_1": last.get("sampler/solved", 0) + last.get("sampler/unsolved", 0),
    }


def _by_level(run_dir: Path) -> dict[str, tuple[float, float]]:
    """Per difficulty level of a run: (its share of the run's problem draws, its final test accuracy), read from
    the last step's ``coverage/share_level_*`` and the last evaluation's ``by_level``."""
    rows = _jsonl(run_dir / "metrics.jsonl")
    final = _jsonl(run_dir / "eval.jsonl")[-1]
    nan = float("nan")
    return {
        level: (rows[-1].get(f"coverage/share_level_{level}", nan), entry["accuracy"])
        for level, entry in sorted(final.get("by_level", {}).items())
    }


def _cell(r: dict | None) -> str:
    if not r or r.get("mean") is None:
        return "-"
    lo, hi = r.get("ci95") or (float("nan"), float("nan"))
    bound = "<= " if r.get("upper_bound") else ""
    hi_text = "beyond" if hi is None else f"{hi:.2f}"  # no upper end: some resample never reaches the target
    return f"{bound}{r['mean']:.2f}x [{lo:.2f}, {hi_text}]"


def report(out: Path) -> None:
    """Per pool and preset: the chosen rate, final test accuracy, the paired ratio to grpo at the 90% target and
    at the early ones (50%, 75%: a sampler can lead early and fall behind, as on SmolLM2's 160-problem pool), and
    the sampler's own statistics averaged over the evaluation runs; then each level's share of the draws and its
    final test accuracy."""
    print(
        "| pool | visits per problem | preset | rate | final test accuracy | completions to 90% vs grpo | "
        "to 50% / 75% | informative fraction | problems never drawn | most visits | "
        "problems solved or unsolved at last draw |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for pool, size in POOLS.items():
        s = summary(out, pool)
        if s is None:
            print(f"| {pool} | {DRAWS / size:.1f} | (not finished) | | | | | | | | |")
            continue
        for preset in PRESETS:
            entry = s["presets"].get(preset)
            if entry is None:
                continue
            dirs = _eval_dirs(out, pool, preset)
            stats = [_eval_metrics(d) for d in dirs if (d / "metrics.jsonl").exists()]
            mean = {k: statistics.fmean(x[k] for x in stats) for k in stats[0]} if stats else {}
            acc = entry.get("final_accuracy_mean")
            acc_text = "-" if acc is None else f"{100 * acc:.1f}%"
            nan = float("nan")
            rate = entry.get("chosen", {}).get("train.lr", nan)
            vs_grpo = "1 (baseline)" if preset == "grpo" else _cell(ratio(entry))
            early = "-" if preset == "grpo" else " / ".join(_cell(ratio(entry, t)) for t in EARLY_TARGETS)
            print(
                f"| {pool} | {DRAWS / size:.1f} | {preset} | {rate:g} | {acc_text} | {vs_grpo} | {early} | "
                f"{mean.get('informative', nan):.2f} | {mean.get('never_visited', nan):.0f} | "
                f"{mean.get('max_visits', nan):.0f} | {mean.get('at_0_or_1', nan):.0f} |"
            )
    _report_levels(out)
    for pool in POOLS:
        where = out / "confirm" / pool
        if (where / "summary.json").exists():
            print(f"\nconfirmation, {pool} (seeds {CONFIRM_SEEDS}):")
            for preset, entry in json.loads((where / "summary.json").read_text())["presets"].items():
                if preset != "grpo":
                    print(f"  {preset}: {_cell(ratio(entry))}")


def _report_levels(out: Path) -> None:
    """Where each preset spent its draws and what it learned there: per pool and preset, each level's share of
    the problem draws and its final test accuracy (both in %, averaged over the evaluation runs)."""
    header = False
    for pool in POOLS:
        for preset in PRESETS:
            dirs = _eval_dirs(out, pool, preset)
            per_run = [_by_level(d) for d in dirs if (d / "eval.jsonl").exists() and (d / "metrics.jsonl").exists()]
            if not per_run:
                continue
            levels = list(per_run[0])
            if not header:
                print(f"\n| pool | preset | share of draws, level {' / '.join(levels)} | final test accuracy, level "
                      f"{' / '.join(levels)} |\n|---|---|---|---|")  # fmt: skip
                header = True
            draws = " / ".join(f"{100 * statistics.fmean(r[lv][0] for r in per_run):.0f}" for lv in levels)
            accs = " / ".join(f"{100 * statistics.fmean(r[lv][1] for r in per_run):.0f}" for lv in levels)
            print(f"| {pool} | {preset} | {draws} | {accs} |")


def main(argv: list[str] | None = None) -> int:
    helps = (
        "run (or continue) every pool's study, then the confirmations",
        "print each stage's command (the confirmations once the pools have run)",
        "the map: per pool and preset, the ratio and the sampler's statistics",
    )
    return cli(__doc__, "runs/visits-map", run, plan, report, helps, argv)


if __name__ == "__main__":
    sys.exit(main())
