"""The study's tables from `priorl compare` output directories: one mix, presets from one or more comparisons.

For each preset (mean over its seeds): held-out accuracy along the budget, the final accuracy (± std), the
completions it needed to reach grpo's final accuracy, the informative fraction, tokens trained, wall time,
the most and the 99th-percentile visits per problem, the budget share per level, the final held-out accuracy
per level, and the accuracy at an equal number of *trained* tokens (grpo's total), interpolated along each
run's evaluations (replay trains more tokens per generated completion, so this is the compute-matched view).

    python benchmarks/study_report.py --name default runs/study-default runs/study-default-pass \\
        --out benchmarks/study-r3

writes OUT/NAME.json, OUT/NAME.md and OUT/NAME_accuracy.png, and prints the markdown.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from compare_details import _levels  # noqa: E402

ORDER = ("grpo", "prioritized", "prioritized-pass", "adv-replay", "prioritized+adv-replay",
         "prioritized-pass+adv-replay", "prioritized-beta", "dynamic-sampling")  # fmt: skip


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def run_figures(run: Path, levels_cache: dict) -> dict:
    evals = _lines(run / "eval.jsonl")
    metrics = _lines(run / "metrics.jsonl")
    batches = _lines(run / "batches.jsonl")
    summary = json.loads((run / "summary.json").read_text())
    key = (run / "config.yaml").read_text()
    if key not in levels_cache:
        levels_cache[key] = _levels(run)
    levels = levels_cache[key]
    visits = np.bincount(np.concatenate([b["problem_ids"] for b in batches]), minlength=len(levels))
    share: dict[str, float] = {}
    for b in batches:
        for pid in b["problem_ids"]:
            share[str(levels[pid])] = share.get(str(levels[pid]), 0) + 1
    total = sum(share.values())
    # trained tokens so far at each evaluation (an evaluation at step s follows s steps)
    cum = np.cumsum([0] + [m["tokens_trained"] for m in metrics])
    return {
        "rollouts": [e["rollouts_generated"] for e in evals],
        "accuracy": [e["accuracy"] for e in evals],
        "tokens_at_eval": [int(cum[min(e["step"], len(cum) - 1)]) for e in evals],
        "final_by_level": {k: v["accuracy"] for k, v in evals[-1]["by_level"].items()},
        "by_level_curve": {k: [e["by_level"][k]["accuracy"] for e in evals] for k in evals[-1]["by_level"]},
        "informative": float(np.mean([m["informative_fraction"] for m in metrics])),
        "tokens_trained": int(cum[-1]),
        "wall_s": float(summary["wall_seconds"]),
        "max_visits": int(visits.max()),
        "p99_visits": int(np.percentile(visits, 99)),
        "share": {k: v / total for k, v in sorted(share.items())},
    }


def collect(dirs: list[Path]) -> dict[str, list[dict]]:
    cache: dict = {}
    out: dict[str, list[dict]] = {}
    for d in dirs:
        for preset_dir in sorted(p for p in d.iterdir() if p.is_dir()):
            name = preset_dir.name.replace("_", "+")
            seeds = sorted(p for p in preset_dir.glob("seed_*") if (p / "summary.json").exists())
            if seeds:
                out.setdefault(name, []).extend(run_figures(s, cache) for s in seeds)
    return dict(sorted(out.items(), key=lambda kv: ORDER.index(kv[0]) if kv[0] in ORDER else 99))


def _reach(rollouts: list, curve: np.ndarray, target: float) -> int | None:
    """Completions at which the mean curve first reaches ``target``, linear between evaluations."""
    hit = np.flatnonzero(curve >= target - 1e-9)
    if not hit.size:
        return None
    i = int(hit[0])
    if i == 0:
        return int(rollouts[0])
    x0, x1, y0, y1 = rollouts[i - 1], rollouts[i], curve[i - 1], curve[i]
    return int(round(x0 + (x1 - x0) * (target - y0) / (y1 - y0)))


def summarize(runs: dict[str, list[dict]]) -> dict:
    base = runs["grpo"]
    grpo_final = float(np.mean([r["accuracy"][-1] for r in base]))
    grpo_tokens = float(np.mean([r["tokens_trained"] for r in base]))
    rows = {}
    for name, rs in runs.items():
        curve = np.mean([r["accuracy"] for r in rs], axis=0)
        rollouts = rs[0]["rollouts"]
        at_tokens = [float(np.interp(grpo_tokens, r["tokens_at_eval"], r["accuracy"])) for r in rs]
        rows[name] = {
            "seeds": len(rs),
            "curve": [round(float(x), 4) for x in curve],
            "rollouts": rollouts,
            "final": float(curve[-1]),
            "final_std": float(np.std([r["accuracy"][-1] for r in rs])),
            "reach_grpo_final": _reach(rollouts, curve, grpo_final),
            "at_grpo_tokens": float(np.mean(at_tokens)),
            "informative": float(np.mean([r["informative"] for r in rs])),
            "tokens_trained": float(np.mean([r["tokens_trained"] for r in rs])),
            "wall_s": float(np.mean([r["wall_s"] for r in rs])),
            "max_visits": float(np.mean([r["max_visits"] for r in rs])),
            "p99_visits": float(np.mean([r["p99_visits"] for r in rs])),
            "share": {k: float(np.mean([r["share"].get(k, 0.0) for r in rs])) for k in rs[0]["share"]},
            "final_by_level": {
                k: float(np.mean([r["final_by_level"][k] for r in rs])) for k in rs[0]["final_by_level"]
            },
            "by_level_curve": {
                k: [round(float(x), 4) for x in np.mean([r["by_level_curve"][k] for r in rs], axis=0)]
                for k in rs[0]["by_level_curve"]
            },
        }
    return {"grpo_final": grpo_final, "grpo_tokens": grpo_tokens, "presets": rows}


def markdown(name: str, s: dict) -> str:
    rows = s["presets"]
    lines = [f"#### {name}", "",
             "| preset | final | at grpo's trained tokens | completions to grpo's final | informative | tokens trained "
             "| wall s/run | max / p99 visits |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for n, r in rows.items():
        reach = f"{r['reach_grpo_final']:,}" if r["reach_grpo_final"] is not None else "never"
        lines.append(
            f"| {n} | {100 * r['final']:.1f}% ± {100 * r['final_std']:.1f}% | {100 * r['at_grpo_tokens']:.1f}% "
            f"| {reach} "
            f"| {100 * r['informative']:.1f}% | {r['tokens_trained']:,.0f} | {r['wall_s']:.0f} "
            f"| {r['max_visits']:.0f} / {r['p99_visits']:.0f} |"
        )
    first = next(iter(rows.values()))
    lines += ["", "| completions | " + " | ".join(f"{x:,}" for x in first["rollouts"]) + " |",
              "|---" * (len(first["rollouts"]) + 1) + "|"]  # fmt: skip
    for n, r in rows.items():
        lines.append(f"| {n} | " + " | ".join(f"{100 * x:.1f}" for x in r["curve"]) + " |")
    levels = list(first["share"])
    lines += ["", "| preset | " + " | ".join(f"L{k} share / final" for k in levels) + " |",
              "|---" * (len(levels) + 1) + "|"]  # fmt: skip
    for n, r in rows.items():
        cells = [f"{r['share'].get(k, 0):.3f} / {100 * r['final_by_level'].get(k, 0):.0f}%" for k in levels]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    lines += ["", "Held-out accuracy per level along the budget (%, mean over seeds):", "",
              "| preset | level | " + " | ".join(f"{x:,}" for x in first["rollouts"]) + " |",
              "|---|---" + "|---" * len(first["rollouts"]) + "|"]  # fmt: skip
    for n, r in rows.items():
        for k, curve in r["by_level_curve"].items():
            lines.append(f"| {n} | {k} | " + " | ".join(f"{100 * x:.0f}" for x in curve) + " |")
    return "\n".join(lines) + "\n"


def plot(name: str, s: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for n, r in s["presets"].items():
        style = "--" if "adv-replay" in n else "-"
        ax.plot(r["rollouts"], [100 * x for x in r["curve"]], style, marker="o", ms=3, label=n)
    ax.set_xlabel("generated completions")
    ax.set_ylabel("held-out greedy accuracy (%)")
    ax.set_title(f"{name}: mean of {next(iter(s['presets'].values()))['seeds']} seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

    levels = list(next(iter(s["presets"].values()))["by_level_curve"])
    fig, axes = plt.subplots(1, len(levels), figsize=(2.6 * len(levels), 3.0), sharey=True, squeeze=False)
    for ax, k in zip(axes[0], levels, strict=True):
        for n, r in s["presets"].items():
            style = "--" if "adv-replay" in n else "-"
            ax.plot(r["rollouts"], [100 * x for x in r["by_level_curve"][k]], style, marker="o", ms=3, label=n)
        ax.set_title(f"level {k}", fontsize=9)
        ax.set_xlabel("completions", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("held-out accuracy (%)")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path.with_name(path.stem.replace("_accuracy", "") + "_levels.png"), dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dirs", nargs="+", type=Path, help="priorl compare output directories")
    ap.add_argument("--name", required=True)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/study-r3"))
    args = ap.parse_args()
    s = summarize(collect(args.dirs))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(s, indent=1) + "\n")
    md = markdown(args.name, s)
    (args.out / f"{args.name}.md").write_text(md)
    plot(args.name, s, args.out / f"{args.name}_accuracy.png")
    print(md)


if __name__ == "__main__":
    main()
