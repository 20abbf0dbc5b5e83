"""A study's report: ``report.md`` (tables that say what each number is) and its PNG plots.

Plots (matplotlib, imported only here, when drawn): held-out test accuracy against completions at the chosen
settings (mean and a band of one standard deviation over the evaluation seeds, the targets as lines); the
sensitivity of the criterion to each gridded value per preset; the validation curves of every tuning cell; the
informative fraction; the sampler's pools; replay ages.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from priorl.eval.plots import pyplot
from priorl.eval.plots import save_figure as _save
from priorl.study.plan import MIN_EVAL_POINTS, is_number, split_key
from priorl.study.records import read_jsonl

AES_LINE = (
    "AES: accuracy-efficiency score against grpo (O1-Pruner, arXiv 2501.12570): dL + 3|dAcc| when accuracy is "
    "not lower, dL - 5|dAcc| otherwise, with dL the relative cut in mean response length and dAcc the relative "
    "accuracy change; positive is better (docs/compare.md in priorl's repository, section AES)."
)


def _pct(v) -> str:
    return "-" if v is None else f"{v:.1%}"


def fmt_count(v) -> str:
    return "beyond the budget" if v is None else f"{v:,.0f}"


def fmt_interval(ci, fmt) -> str:
    if ci is None:
        return "n=1, no interval"
    lo, hi = ci
    return f"[{fmt(lo) if lo is not None else 'beyond'}, {fmt(hi) if hi is not None else 'beyond the budget'}]"


def fmt_ratio(entry: dict | None) -> str:
    if not entry or entry.get("mean") is None:
        return "n/a" if not entry else "beyond the budget"
    ci = entry.get("ci95")
    at_most = "<= " if entry.get("upper_bound") else ""  # grpo never reached the target: counted at the budget
    if ci is None:
        return f"{at_most}{entry['mean']:.2f}x (n=1, no interval)"
    lo, hi = ci
    text = f"{'-' if lo is None else f'{lo:.2f}'}, {'inf' if hi is None else f'{hi:.2f}'}"
    note = " (grpo beyond the budget: counted at it)" if at_most else ""
    return f"{at_most}{entry['mean']:.2f}x [{text}]{note}"


def where_runs_ran(summary: dict) -> list[str]:
    """report.md's section on machines, when the evaluation runs ran on more than one (runs are not bit-identical
    across machines: floating-point order differs): each machine and its runs."""
    by: dict[str, list[str]] = {}
    for preset, runs in (summary.get("runs") or {}).items():
        for r in runs:
            m = r.get("machine") or {}
            what = (f"{m.get('cpu', 'unknown CPU')} ({', '.join(m.get('cpu_bf16') or []) or 'no bf16 units'}), "
                    f"{m.get('gpu') or 'no GPU'}, torch {m.get('torch', '?')}, {m.get('torch_threads', '?')} threads, "
                    f"{m.get('precision', '?')}")  # fmt: skip
            by.setdefault(what, []).append(f"{preset} seed {r['seed']}")
    if len(by) < 2:
        return []
    lines = ["", "## Where the runs ran (more than one machine: runs are not bit-identical across machines)", ""]
    return lines + [f"- {what}: {', '.join(runs)}" for what, runs in by.items()]


def target_label(key: str, accuracy: float, kind: str = "gain") -> str:
    """What a target line is: ``50% of grpo's gain: 62.2% accuracy`` (or ``target 62.2%`` for absolute ones)."""
    try:
        share = float(key)
    except ValueError:
        return f"{key} target: {accuracy:.1%}"
    if kind == "absolute":
        return f"target {accuracy:.1%} accuracy"
    return f"{share:.0%} of grpo's gain: {accuracy:.1%} accuracy"


def report_markdown(summary: dict, plots: list[str]) -> str:
    """The study in Markdown: the plan's outcome, the primary comparison, the tables, the plots."""
    study = summary.get("study", {})
    lines = _md_head(summary) + _md_primary(summary) + _md_targets(summary) + _md_ratios(summary)
    lines += _md_end(summary) + _md_sensitivity(summary) + where_runs_ran(summary)
    lines += ["", "Accuracy is held-out greedy pass@1. " + AES_LINE, ""]
    if study.get("git_commit"):
        lines += [f"priorl {study.get('priorl_version')}, commit {study['git_commit'][:12]}"
                  f"{' (with uncommitted changes)' if study.get('git_dirty') else ''}.", ""]  # fmt: skip
    lines += [f"![{Path(p).stem}]({Path(p).name})" for p in plots]
    return "\n".join(lines) + "\n"


def _md_head(summary: dict) -> list[str]:
    """The title, how the presets were tuned, the targets, and what could not act."""
    presets = summary["presets"]
    seeds = max((e["seeds_ok"] + e["seeds_failed"] for e in presets.values()), default=0)
    lines = [
        f"# Study at an equal budget of {summary['budget']:,} generated completions ({seeds} evaluation seed(s))",
        "",
    ]
    tuning = summary.get("tuning")
    if tuning:
        grid = "; ".join(f"{k} in {', '.join(map(str, v))}" for k, v in tuning["grid"].items()) or "base settings"
        lines += [
            f"Each preset was tuned over {grid} on tuning seeds {', '.join(map(str, tuning['seeds']))}; the "
            f"criterion: {summary['criterion']}. The chosen setting ran on the evaluation seeds and is reported on "
            "the test split.",
            "",
        ]
    else:
        lines += ["No tuning phase: every preset ran at the base config's settings.", ""]
    lines += [f"Targets ({summary['targets_from']}):", ""]
    for key, t in summary["targets"].items():
        lines.append(
            f"- {key}: {target_label(key, t['accuracy'], (summary.get('study') or {}).get('target_kind', 'gain'))}"
        )
    if summary.get("coarse_evaluations"):
        lines += ["", f"Warning: {summary['eval_points']} evaluation points (fewer than {MIN_EVAL_POINTS}): "
                  "completions to a target are interpolated across long stretches."]  # fmt: skip
    inactive = summary.get("inactive") or {}
    if inactive:
        lines += ["", "## Parts that could not act within the budget (run with --allow-inactive)", ""]
        lines += [f"- {preset}: {why}" for preset, reasons in inactive.items() for why in reasons]
        lines += ["", "Those presets' figures measure them without the part named: read them as such."]
    return lines


def _md_primary(summary: dict) -> list[str]:
    """The primary comparison's ratio to grpo, named before the runs."""
    prim = summary["primary"]
    pe = summary["presets"].get(prim["preset"], {})
    r = (pe.get("ratio_to_grpo") or {}).get(prim["target"]) if prim["target"] else None
    lines = ["", f"## Primary comparison: {prim['preset']} against {prim['baseline']}, {prim['target']} target", ""]
    if r and prim["preset"] != prim["baseline"]:
        lines.append(
            f"Completions to the target, ratio to grpo: **{fmt_ratio(r['completions'])}** (95% interval, paired over "
            f"{r['seeds']} seeds); trained tokens {fmt_ratio(r['tokens'])}; training time {fmt_ratio(r['wall'])}. "
            "Below 1 is fewer than grpo."
        )
    else:
        lines.append("n/a")
    return lines


def _md_targets(summary: dict) -> list[str]:
    """Completions to each target per preset (with the chosen setting when the study tuned)."""
    presets = summary["presets"]
    show_chosen = any(e["chosen"] for e in presets.values())  # an untuned study has nothing chosen: no column
    lines = ["", "## Completions to each target (seed-mean curve; 95% bootstrap interval; share of seeds there)",
             "", "| preset | " + ("chosen | " if show_chosen else "")
             + " | ".join(f"{k} target" for k in summary["targets"]) + " |",
             "|---|" + ("---|" if show_chosen else "") + "---|" * len(summary["targets"])]  # fmt: skip
    for preset, e in presets.items():
        chosen = ", ".join(f"{k}={v:g}" if is_number(v) else f"{k}={v}" for k, v in e["chosen"].items()) or "-"
        cells = []
        for key in summary["targets"]:
            t = e["completions_to_target"].get(key)
            cells.append(
                "-" if t is None else f"{fmt_count(t['mean'])} {fmt_interval(t['ci95'], fmt_count)}, {t['reached']:.0%}"
            )
        lines.append(f"| {preset} | " + (f"{chosen} | " if show_chosen else "") + " | ".join(cells) + " |")
    return lines


def _md_ratios(summary: dict) -> list[str]:
    """Each preset's paired ratios to grpo at each target (completions / trained tokens / training time)."""
    prim = summary["primary"]
    tuned = "tuned " if summary.get("tuning") else ""
    heading = f"## Ratio to {tuned}grpo (completions / trained tokens / training time), paired"
    lines = ["", heading, "",
             "| preset | " + " | ".join(f"{k} target" for k in summary["targets"]) + " |",
             "|---|" + "---|" * len(summary["targets"])]  # fmt: skip
    for preset, e in summary["presets"].items():
        if preset == summary["baseline"]:
            continue
        cells = []
        for key in summary["targets"]:
            rr = e["ratio_to_grpo"].get(key)
            cells.append("-" if rr is None else " / ".join(fmt_ratio(rr[w]) for w in ("completions", "tokens", "wall")))
        role = "primary" if preset == prim["preset"] else "secondary"
        lines.append(f"| {preset} ({role}) | " + " | ".join(cells) + " |")
    return lines


def _md_end(summary: dict) -> list[str]:
    """Final accuracy, informative fraction, AES and costs at the end of the budget."""
    lines = ["", "## At the end of the budget", "",
             "| preset | final accuracy (mean, 95% t interval) | informative fraction | AES vs grpo | training s/run "
             "| tokens trained/run |", "|---|---|---|---|---|---|"]  # fmt: skip
    for preset, e in summary["presets"].items():
        if e["final_accuracy_mean"] is None:
            acc = "failed"
        else:
            ci = e["final_accuracy_ci95"]
            acc = f"{e['final_accuracy_mean']:.1%} " + ("(n=1, no interval)" if ci is None else
                                                          f"[{ci[0]:.1%}, {ci[1]:.1%}]")  # fmt: skip
        a = "-" if e["aes_vs_grpo"] is None else f"{e['aes_vs_grpo']:+.3f}"
        wall = "-" if e.get("train_seconds_mean") is None else f"{e['train_seconds_mean']:.0f}"
        tokens = "-" if e["tokens_trained_mean"] is None else f"{e['tokens_trained_mean']:,.0f}"
        failed = f" ({e['seeds_failed']} failed)" if e["seeds_failed"] else ""
        lines.append(f"| {preset}{failed} | {acc} | {_pct(e['informative_fraction'])} | {a} | {wall} | {tokens} |")
    return lines


def _md_sensitivity(summary: dict) -> list[str]:
    """The tuning table (validation split) and the grid-edge and instability flags; nothing for an untuned study."""
    if not summary.get("tuning"):
        return []
    presets = summary["presets"]
    lines = ["", "## Sensitivity (tuning, validation split)", "",
             "| preset | setting | completions to the criterion's target | area | final |",
             "|---|---|---|---|---|"]  # fmt: skip
    for preset, e in presets.items():
        for row in e["sensitivity"]:
            mark = " (chosen)" if row.get("chosen") else ""
            lines.append(f"| {preset} | {row['name']}{mark} | {fmt_count(row['completions'])} | "
                         f"{_pct(row['auc'])} | {_pct(row['final'])} |")  # fmt: skip
    flags = [f"{p}: {f}" for p, e in presets.items() for f in e["edge"]]
    if flags:
        lines += ["", "Chosen at the edge of the grid:", ""] + [f"- {f}" for f in flags]
    flags = [f"{p}: {f}" for p, e in presets.items() for f in e.get("instability", [])]
    if flags:
        lines += ["", "Chosen next to instability:", ""] + [f"- {f}" for f in flags]
    return lines


def make_plots(runs: dict[str, list[dict]], summary: dict, out: Path) -> list[str]:
    """PNG plots into ``out``; their paths (none without matplotlib)."""
    plt = pyplot()
    if plt is None:
        return []
    paths = [_plot_accuracy(plt, summary, out)]
    tuning = summary.get("tuning")
    if tuning and tuning.get("grid"):
        paths += [_plot_sensitivity(plt, summary, tuning, out), _plot_tuning_curves(plt, summary, tuning, out)]
    paths += [_plot_informative(plt, runs, out), _plot_pools(plt, runs, out), _plot_ages(plt, runs, out)]
    return [p for p in paths if p is not None]


def _plot_accuracy(plt, summary: dict, out: Path) -> str:
    """Test accuracy against completions at each preset's chosen setting, with the targets."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for preset, c in summary["curves"].items():
        x, m, s = np.array(c["rollouts"]), np.array(c["mean"]), np.array(c["std"])
        chosen = summary["presets"][preset]["chosen"]
        label = preset + (f" ({', '.join(f'{k.split(chr(46))[-1]}={v}' for k, v in chosen.items())})" if chosen else "")
        ax.plot(x, m, label=label)
        ax.fill_between(x, m - s, m + s, alpha=0.15)
    kind = (summary.get("study") or {}).get("target_kind", "gain")
    for key, t in summary["targets"].items():
        ax.axhline(t["accuracy"], color="grey", lw=0.8, ls=":")
        ax.annotate(target_label(key, t["accuracy"], kind), (0, t["accuracy"]), fontsize=7, color="grey", va="bottom")
    ax.set(xlabel="generated completions", ylabel="test accuracy (greedy pass@1)",
           title="accuracy vs generation at each preset's chosen setting")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, out / "accuracy_vs_rollouts.png")


def sensitivity_axis(tuning: dict) -> tuple[str, list[str]]:
    """The setting the sensitivity plot puts on its x axis and every grid key that sets it: the first grid key
    with any ``PRESET:`` prefix removed (a per-preset grid, ``--grid grpo:train.lr=...``, names the same setting
    once per preset; a sensitivity row's ``cell`` names it without the prefix)."""
    keys = list(tuning["grid"])
    name = split_key(keys[0])[1]
    return name, [k for k in keys if split_key(k)[1] == name]


def _plot_sensitivity(plt, summary: dict, tuning: dict, out: Path) -> str:
    """The criterion (validation completions to the 90% target) against the first grid key, per preset."""
    key, grid_keys = sensitivity_axis(tuning)
    keys = list(tuning["grid"])
    numeric = all(is_number(v) for k in grid_keys for v in tuning["grid"][k])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for preset, e in summary["presets"].items():
        rows = [r for r in e["sensitivity"] if key in r["cell"]]
        if not rows:
            continue
        xs = [r["cell"][key] for r in rows]
        ys = [r["completions"] if r["completions"] is not None else np.nan for r in rows]
        line = ax.plot(range(len(xs)) if not numeric else xs, ys, marker="o", label=preset)[0]
        censored = [x for x, r in zip(xs, rows, strict=True) if r["completions"] is None]
        if censored:
            ax.scatter(censored if numeric else [xs.index(c) for c in censored],
                       [summary["budget"]] * len(censored), marker="^", color=line.get_color())  # fmt: skip
    if numeric and all(v > 0 for k in grid_keys for v in tuning["grid"][k]):
        ax.set_xscale("log")
    ax.axhline(summary["budget"], color="grey", lw=0.8, ls=":")
    ax.set(xlabel=key + (" (other keys pooled)" if len(keys) > len(grid_keys) else ""),
           ylabel="completions to the 90% target (validation)",
           title="sensitivity: ▲ at the budget = never reached")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, out / "sensitivity.png")


def _plot_tuning_curves(plt, summary: dict, tuning: dict, out: Path) -> str | None:
    """Each preset's validation curves, one per grid cell (tuning seeds' mean)."""
    tc = summary.get("tuning_curves") or {}
    by = tc.get("by_preset") or {}
    if by:
        fig, axes = plt.subplots(1, len(by), figsize=(4 * len(by), 3.6), sharey=True, squeeze=False)
        x = np.array(tc["rollouts"])
        for ax, (preset, cells) in zip(axes[0], by.items(), strict=True):
            for name, ys in cells.items():
                ax.plot(x, ys, label=name.split(".")[-1])
            if tuning.get("criterion_target") is not None:
                ax.axhline(tuning["criterion_target"], color="grey", lw=0.8, ls=":")
            ax.set(title=preset, xlabel="completions")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        axes[0][0].set_ylabel("validation accuracy (tuning seeds' mean)")
        return _save(fig, out / "tuning_curves.png")
    return None


def _plot_informative(plt, runs: dict[str, list[dict]], out: Path) -> str:
    """The share of groups with differing rewards per step, seed-mean per preset."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for preset, rs in runs.items():
        series = [np.array([m["informative_fraction"] for m in r["metrics"]]) for r in rs if r.get("metrics")]
        if series:
            n = min(len(v) for v in series)
            ax.plot(np.arange(1, n + 1), np.mean([v[:n] for v in series], axis=0), label=preset)
    ax.set(xlabel="step", ylabel="informative fraction", title="groups with differing rewards", ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, out / "informative_fraction.png")


def _plot_pools(plt, runs: dict[str, list[dict]], out: Path) -> str | None:
    """A prioritized sampler's pools (unseen, active, solved, unsolved) along one run."""
    prioritized = [p for p in runs if p.startswith("prioritized") and any(r.get("metrics") for r in runs[p])]
    if prioritized:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        r = next(r for r in runs[prioritized[0]] if r.get("metrics"))
        steps = [m["step"] for m in r["metrics"]]
        for pool in ("unseen", "active", "solved", "unsolved"):
            if all(f"sampler/{pool}" in m for m in r["metrics"]):
                ax.plot(steps, [m[f"sampler/{pool}"] for m in r["metrics"]], label=pool)
        ax.set(xlabel="step", ylabel="problems", title=f"sampler pools ({prioritized[0]}, seed {r['seed']})")
        ax.grid(alpha=0.3)
        ax.legend()
        return _save(fig, out / "sampler_pools.png")
    return None


def _plot_ages(plt, runs: dict[str, list[dict]], out: Path) -> str | None:
    """The age of replayed rollouts, per replay preset."""
    ages = {}
    for preset, rs in runs.items():
        values = []
        for r in rs:
            for b in read_jsonl(Path(r["dir"]) / "batches.jsonl"):
                values += [b["step"] - born for _, born in b["replayed"]]
        if values:
            ages[preset] = values
    if ages:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        top = max(max(v) for v in ages.values())
        for preset, values in ages.items():
            ax.hist(values, bins=np.arange(0, top + 2) - 0.5, alpha=0.5, label=preset)
        ax.set(xlabel="age of a replayed rollout (steps)", ylabel="replays", title="replay age")
        ax.legend()
        return _save(fig, out / "replay_age.png")
    return None
