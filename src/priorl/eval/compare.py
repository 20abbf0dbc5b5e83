"""`priorl compare`: every preset and seed at the same budget of generated completions, side by side.

Each run is a normal ``priorl train`` run in ``OUT/PRESET/seed_S`` that stops when it has generated
``budget`` completions and evaluates held-out accuracy every ``budget / eval_points`` completions. The
summary reads those runs' ``eval.jsonl`` and ``metrics.jsonl``; a run that fails is reported and the
others still finish.

A *preset* is a strategy plus the sampler options that define it (:data:`PRESETS`); everything else comes
from the base config, so all presets of one comparison share model, data, batch shape and optimizer.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from priorl.config import RunConfig
from priorl.eval.aes import aes
from priorl.eval.plots import pyplot
from priorl.eval.plots import save_figure as _save

BASELINE = "grpo"

_PAPER_SAMPLER = {
    "kind": "heap",
    "estimator": "last",
    "selection": "greedy",
}  # Fatemi (2026): last group's p(1-p), top-B
_BAYES_SAMPLER = {"kind": "heap", "estimator": "beta", "selection": "thompson"}  # posterior E[p(1-p)], Thompson
_PASS_SAMPLER = {"kind": "pass"}  # selection within a shuffled pass, by posterior P(informative group)

# name -> (strategy, sampler options pinned by the preset). Unpinned sampler options come from the base config.
PRESETS: dict[str, tuple[str, dict]] = {
    "grpo": ("grpo", {}),
    "dynamic-sampling": ("dynamic-sampling", {}),
    "prioritized": ("prioritized", _PAPER_SAMPLER),
    "prioritized-beta": ("prioritized", _BAYES_SAMPLER),
    "prioritized-pass": ("prioritized", _PASS_SAMPLER),
    "naive-replay": ("naive-replay", {}),
    "adv-replay": ("adv-replay", {}),
    "prioritized+adv-replay": ("prioritized+adv-replay", _PAPER_SAMPLER),
    "prioritized-beta+adv-replay": ("prioritized+adv-replay", _BAYES_SAMPLER),
    "prioritized-pass+adv-replay": ("prioritized+adv-replay", _PASS_SAMPLER),
}
DEFAULT_PRESETS = (
    "grpo", "prioritized", "prioritized-pass", "adv-replay", "prioritized+adv-replay", "prioritized-pass+adv-replay",
)  # fmt: skip  # the study's presets (benchmarks/RESULTS.md); `priorl compare` runs these unless --presets is given


def parse_seeds(text: str) -> list[int]:
    """``"3"`` -> ``[0, 1, 2]``; ``"7,8,9"`` -> ``[7, 8, 9]``. Raises ValueError naming the bad part."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"--seeds {text!r}: expected a count (3) or a comma-separated list of seeds (7,8,9)") from None
    if not values:
        raise ValueError(f"--seeds {text!r}: expected a count (3) or a comma-separated list of seeds (7,8,9)")
    if len(parts) == 1 and "," not in str(text):
        if values[0] < 1:
            raise ValueError(f"--seeds {text!r}: a count must be >= 1")
        return list(range(values[0]))
    if len(set(values)) != len(values):
        raise ValueError(f"--seeds {text!r}: a seed is listed twice")
    return values


def run_config(base: RunConfig, preset: str, seed: int, budget: int, eval_points: int, out: Path) -> RunConfig:
    """The config of one run: ``base`` with the preset's strategy and sampler options, the seed, and the budget."""
    strategy, sampler = PRESETS[preset]
    data = base.model_dump(mode="json")
    data.update(strategy=strategy, seed=seed, out_dir=str(out / preset.replace("+", "_") / f"seed_{seed}"))
    if sampler:  # the preset's kind, the other kind's keys back at their defaults, then the pinned options
        data["sampler"] = {**base.sampler.for_kind(sampler["kind"]).model_dump(), **sampler}
    data["train"].update(max_steps=10**9, max_rollouts=budget)
    data["eval"].update(before=True, after=True, every=0, every_rollouts=max(1, budget // eval_points))
    data["logging"].update(progress=False, tensorboard=False)
    data["checkpoint"].update(every=0, keep_last=1)
    return RunConfig.model_validate(data)


def _run_one(cfg_data: dict, overwrite: bool, *, on_step=None, threads: int | None = None) -> dict:
    """Train one run of a comparison; its record (``seed``, ``dir``, ``wall_seconds``, ``evals``, ``metrics``,
    or ``error``). Top-level so a worker process can run it."""
    from priorl.grpo.trainer import Trainer

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    cfg = RunConfig.model_validate(cfg_data)
    t0 = time.perf_counter()
    record: dict = {"seed": cfg.seed, "dir": cfg.out_dir}
    try:
        trainer = Trainer(cfg, overwrite=overwrite)
        try:
            trainer.train(progress=on_step)
        finally:
            trainer.close()
    except Exception as exc:  # noqa: BLE001 - a failed run is reported, the others go on
        record["error"] = f"{type(exc).__name__}: {exc}"
        (Path(cfg.out_dir) / "error.txt").parent.mkdir(parents=True, exist_ok=True)
        (Path(cfg.out_dir) / "error.txt").write_text(traceback.format_exc())
    record["wall_seconds"] = time.perf_counter() - t0
    record["evals"] = _read(Path(cfg.out_dir) / "eval.jsonl") if "error" not in record else []
    record["metrics"] = _read(Path(cfg.out_dir) / "metrics.jsonl") if "error" not in record else []
    return record


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def summarize(runs: dict[str, list[dict]], budget: int) -> dict:
    """Per-preset summary from the finished runs (each: ``evals``, ``metrics``, ``wall_seconds``)."""
    curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for preset, rs in runs.items():
        ok = [r for r in rs if r.get("evals")]
        if not ok:
            continue
        n = min(len(r["evals"]) for r in ok)
        x = np.mean([[e["rollouts_generated"] for e in r["evals"][:n]] for r in ok], axis=0)
        acc = np.array([[e["accuracy"] for e in r["evals"][:n]] for r in ok])
        curves[preset] = (x, acc.mean(axis=0), acc.std(axis=0))
    base = curves.get(BASELINE)
    target = float(base[1][-1]) if base is not None else None
    base_len = _final_mean(runs.get(BASELINE, []), "mean_length")
    summary: dict = {"budget": budget, "baseline": BASELINE, "presets": {}}
    for preset, rs in runs.items():
        ok = [r for r in rs if r.get("evals")]
        finals = [r["evals"][-1]["accuracy"] for r in ok]
        entry: dict = {
            "seeds_ok": len(ok),
            "seeds_failed": len(rs) - len(ok),
            "errors": [r["error"] for r in rs if r.get("error")],
            "final_accuracy_mean": float(np.mean(finals)) if finals else None,
            "final_accuracy_std": float(np.std(finals)) if finals else None,
            "rollouts_to_baseline": None,
            "informative_fraction": _mean_metric(ok, "informative_fraction"),
            "aes_vs_grpo": None,
            "wall_s_mean": float(np.mean([r["wall_seconds"] for r in ok])) if ok else None,
            "tokens_trained_mean": _mean_total(ok, "tokens_trained"),
            "tokens_generated_mean": _mean_last(ok, "tokens_generated"),
            "rollouts_generated_mean": _mean_last(ok, "rollouts_generated"),
            "updates_mean": _mean_total(ok, "updates"),
        }
        if preset in curves and target is not None:
            entry["rollouts_to_baseline"] = _first_reach(*curves[preset][:2], target)
        mean_len = _final_mean(ok, "mean_length")
        if finals and target and base_len and mean_len is not None:
            entry["aes_vs_grpo"] = aes(entry["final_accuracy_mean"], mean_len, target, base_len)
        summary["presets"][preset] = entry
    summary["curves"] = {
        p: {"rollouts": c[0].tolist(), "mean": c[1].tolist(), "std": c[2].tolist()} for p, c in curves.items()
    }
    return summary


def _first_reach(x: np.ndarray, y: np.ndarray, target: float) -> int | None:
    """Completions at which the mean curve first reaches ``target`` (linear between eval points)."""
    for i in range(len(y)):
        if y[i] >= target - 1e-12:
            if i == 0:
                return int(x[0])
            frac = (target - y[i - 1]) / (y[i] - y[i - 1])
            return int(round(x[i - 1] + frac * (x[i] - x[i - 1])))
    return None


def _mean_metric(runs: list[dict], key: str) -> float | None:
    values = [m[key] for r in runs for m in r["metrics"] if key in m]
    return float(np.mean(values)) if values else None


def _mean_total(runs: list[dict], key: str) -> float | None:
    """Per run, the sum of ``key`` over its steps; the mean over runs."""
    totals = [sum(m.get(key, 0) for m in r["metrics"]) for r in runs if r["metrics"]]
    return float(np.mean(totals)) if totals else None


def _mean_last(runs: list[dict], key: str) -> float | None:
    """Per run, ``key`` at its last step (a running counter); the mean over runs."""
    values = [r["metrics"][-1][key] for r in runs if r["metrics"] and key in r["metrics"][-1]]
    return float(np.mean(values)) if values else None


def _final_mean(runs: list[dict], key: str) -> float | None:
    values = [r["evals"][-1][key] for r in runs if r.get("evals") and key in r["evals"][-1]]
    return float(np.mean(values)) if values else None


def run_compare(
    base: RunConfig,
    *,
    presets: list[str],
    seeds: list[int],
    budget: int,
    out: Path,
    eval_points: int = 5,
    on_run=None,
    on_step=None,
    overwrite: bool = False,
    jobs: int = 1,
) -> dict:
    """Run every preset × seed, then write ``summary.json``, ``report.md`` and the plots into ``out``.

    An ``out`` that holds a comparison (its summary.json, or any of the run directories this one would
    write) is refused unless ``overwrite``, which replaces those runs (each cleared as ``priorl train
    --overwrite`` does) and the comparison's own files.

    ``jobs > 1`` runs that many runs at once, each in its own process with ``cpu_count // jobs`` torch
    threads; ``on_run(preset, seed)`` is then called as each run finishes and ``on_step`` is not called.
    Each run is seeded by its own config, so ``jobs`` changes only wall times (and float rounding, through
    the thread count).
    """
    from priorl.grpo.rundir import run_contents

    unknown = [p for p in presets if p not in PRESETS]
    if unknown:
        raise ValueError(f"unknown preset(s) {unknown}; choose from {', '.join(PRESETS)}")
    if BASELINE not in presets:
        raise ValueError(f"--presets must include the baseline '{BASELINE}' (accuracy targets and AES refer to it)")
    out = Path(out)
    planned = [run_config(base, p, s, budget, eval_points, out).out_dir for p in presets for s in seeds]
    used = [d for d in planned if run_contents(d)]
    if not overwrite and ((out / "summary.json").exists() or used):
        raise ValueError(
            f"{out} already holds a comparison ({', '.join(used[:3]) or 'summary.json'}"
            f"{' ...' if len(used) > 3 else ''}): pass --overwrite to replace its runs, or choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[dict]] = {p: [] for p in presets}
    plan = [
        (preset, seed, run_config(base, preset, seed, budget, eval_points, out)) for preset in presets for seed in seeds
    ]
    if jobs <= 1:
        for preset, seed, cfg in plan:
            if on_run is not None:
                on_run(preset, seed)
            runs[preset].append(_run_one(cfg.model_dump(mode="json"), overwrite, on_step=on_step))
    else:
        # One process per run (spawned: no state shared with this one), each pinned to its share of the cores,
        # so that runs side by side neither fight over threads nor see each other's RNG streams.
        threads = max(1, (os.cpu_count() or 1) // jobs)
        done: dict[tuple[str, int], dict] = {}
        pool = ProcessPoolExecutor(
            max_workers=jobs, mp_context=get_context("spawn"), initializer=_die_with_parent, initargs=(os.getpid(),)
        )
        with pool:
            futures = {
                pool.submit(_run_one, cfg.model_dump(mode="json"), overwrite, threads=threads): (preset, seed)
                for preset, seed, cfg in plan
            }
            for future in as_completed(futures):
                preset, seed = futures[future]
                done[(preset, seed)] = future.result()
                if on_run is not None:
                    on_run(preset, seed)
        for preset, seed, _ in plan:
            runs[preset].append(done[(preset, seed)])
    summary = summarize(runs, budget)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    plots = make_plots(runs, summary, out)
    (out / "report.md").write_text(report_markdown(summary, plots, len(seeds)))
    return summary


def _die_with_parent(parent_pid: int) -> None:
    """Worker initializer: the worker is killed when the comparison's process dies, however it dies.

    On Linux through ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, so a SIGKILL of ``priorl compare`` leaves no run
    going on alone (a run loses at most the work since its last checkpoint, which ``checkpoint.every_minutes``
    bounds). Elsewhere the workers end when the pool's pipe closes after their current run.
    """
    import signal
    import sys

    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os.kill(os.getpid(), signal.SIGKILL)


def report_markdown(summary: dict, plots: list[str], seeds: int) -> str:
    """The summary table in Markdown, with the plots below it."""
    lines = [
        f"# Comparison at an equal budget of {summary['budget']:,} generated completions ({seeds} seed(s))",
        "",
        "| preset | final accuracy | rollouts to grpo's final | informative fraction | AES vs grpo | wall s/run "
        "| tokens trained/run |",
        "|---|---|---|---|---|---|---|",
    ]
    for preset, e in summary["presets"].items():
        acc = (
            "failed"
            if e["final_accuracy_mean"] is None
            else f"{e['final_accuracy_mean']:.1%} ± {e['final_accuracy_std']:.1%}"
        )
        reach = "never" if e["rollouts_to_baseline"] is None else f"{e['rollouts_to_baseline']:,}"
        inf = "-" if e["informative_fraction"] is None else f"{e['informative_fraction']:.1%}"
        a = "-" if e["aes_vs_grpo"] is None else f"{e['aes_vs_grpo']:+.3f}"
        wall = "-" if e["wall_s_mean"] is None else f"{e['wall_s_mean']:.0f}"
        tokens = "-" if e["tokens_trained_mean"] is None else f"{e['tokens_trained_mean']:,.0f}"
        failed = f" ({e['seeds_failed']} failed)" if e["seeds_failed"] else ""
        lines.append(f"| {preset}{failed} | {acc} | {reach} | {inf} | {a} | {wall} | {tokens} |")
    lines += ["", "Accuracy: held-out greedy pass@1, mean ± std over seeds at the end of the budget.", ""]
    lines += [f"![{Path(p).stem}]({Path(p).name})" for p in plots]
    return "\n".join(lines) + "\n"


def make_plots(runs: dict[str, list[dict]], summary: dict, out: Path) -> list[str]:
    """PNG plots (matplotlib, imported here): accuracy vs completions, informative fraction, pools, replay ages."""
    plt = pyplot()
    if plt is None:
        return []
    paths = []

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for preset, c in summary["curves"].items():
        x, m, s = np.array(c["rollouts"]), np.array(c["mean"]), np.array(c["std"])
        ax.plot(x, m, marker="o", label=preset)
        ax.fill_between(x, m - s, m + s, alpha=0.15)
    ax.set(xlabel="generated completions", ylabel="held-out accuracy (greedy pass@1)", title="accuracy vs generation")
    ax.grid(alpha=0.3)
    ax.legend()
    paths.append(_save(fig, out / "accuracy_vs_rollouts.png"))

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for preset, rs in runs.items():
        series = [np.array([m["informative_fraction"] for m in r["metrics"]]) for r in rs if r.get("metrics")]
        if series:
            n = min(len(v) for v in series)
            ax.plot(np.arange(1, n + 1), np.mean([v[:n] for v in series], axis=0), label=preset)
    ax.set(xlabel="step", ylabel="informative fraction", title="groups with differing rewards", ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend()
    paths.append(_save(fig, out / "informative_fraction.png"))

    prioritized = [p for p in runs if p.startswith("prioritized") and any(r.get("metrics") for r in runs[p])]
    if prioritized:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        r = next(r for r in runs[prioritized[0]] if r.get("metrics"))
        steps = [m["step"] for m in r["metrics"]]
        for pool in ("unseen", "active", "solved", "unsolved"):
            ax.plot(steps, [m[f"sampler/{pool}"] for m in r["metrics"]], label=pool)
        ax.set(xlabel="step", ylabel="problems", title=f"sampler pools ({prioritized[0]}, seed {r['seed']})")
        ax.grid(alpha=0.3)
        ax.legend()
        paths.append(_save(fig, out / "sampler_pools.png"))

    ages = {}
    for preset, rs in runs.items():
        values = []
        for r in rs:
            for b in _read(Path(r["dir"]) / "batches.jsonl"):
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
        paths.append(_save(fig, out / "replay_age.png"))
    return paths
