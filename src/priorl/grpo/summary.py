"""The end of every run: ``summary.json`` and ``progress.png`` in its directory.

The summary is read back from the run's own logs (metrics.jsonl, eval.jsonl), so it is the same whether
the run went through in one go or was stopped and resumed: the held-out table before -> after training
by level, the budget spent, the visits per training problem, the time, verifier errors and time-outs
(training and evaluation), the warnings given, and where everything is. ``progress.png`` plots the training
reward and the held-out accuracy against the completions generated, like ``priorl compare`` does for many runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from priorl.eval.plots import NO_MATPLOTLIB, pyplot, save_figure
from priorl.presets import preset_of
from priorl.statefile import write_atomic

PLOT = "progress.png"
SUMMARY = "summary.json"


def read_jsonl(path: str | Path) -> list[dict]:
    """The records of a JSONL log; a torn last line (a killed write) is ignored."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return out


def before_after(evals: list[dict], *, step: int, before: bool, after: bool, finished: bool) -> dict:
    """``{"before": ..., "after": ...}`` from eval.jsonl records: the step-0 evaluation and the final one."""
    out = {}
    if before:
        first = [e for e in evals if e["step"] == 0]
        if first:
            out["before"] = first[0]
    if after and finished:
        last = [e for e in evals if e["step"] == step]
        if last and step > 0:
            out["after"] = last[-1]
    return out


def _table(results: dict) -> list[dict]:
    """Rows level / n / before / after / change (points), then "all"."""
    before, after = results.get("before"), results.get("after")
    ref = after or before
    if ref is None:
        return []
    rows = []
    for level, entry in [*ref["by_level"].items(), ("all", {"n": ref["num_problems"]})]:

        def acc(r, lv=level):
            if r is None:
                return None
            return r["accuracy"] if lv == "all" else r["by_level"].get(lv, {}).get("accuracy")

        b, a = acc(before), acc(after)
        row = {"level": level, "n": entry["n"], "before": b, "after": a}
        row["change_points"] = round((a - b) * 100, 2) if a is not None and b is not None else None
        rows.append(row)
    return rows


def build_summary(trainer, *, status: str, error: str | None = None) -> dict:
    """The summary of ``trainer``'s run as it stands (see the module docstring)."""
    from priorl.precision import machine_record

    c, run = trainer.config, Path(trainer.run_dir)
    metrics = read_jsonl(run / "metrics.jsonl")
    evals = read_jsonl(run / "eval.jsonl")
    results = before_after(
        evals, step=trainer.step, before=c.eval.before, after=c.eval.after, finished=trainer.finished()
    )
    generated = int(trainer.counters["rollouts_generated"])
    errors = sum(int(m.get("verifier_errors", 0)) for m in metrics)
    timeouts = sum(int(m.get("verifier_timeouts", 0)) for m in metrics)
    eval_scored = sum(e["num_problems"] * e.get("samples", 1) for e in evals) + sum(
        e["sampled"]["num_problems"] * e["sampled"]["samples"] for e in evals if "sampled" in e
    )
    eval_errors = sum(e["verifier_errors"] + e.get("sampled", {}).get("verifier_errors", 0) for e in evals)
    eval_timeouts = sum(e["verifier_timeouts"] + e.get("sampled", {}).get("verifier_timeouts", 0) for e in evals)
    last = trainer.last_checkpoint()
    summary = {
        "run_id": trainer.run_id,
        "status": status,
        "error": error,
        "preset": preset_of(c),  # the preset whose parts the run had, or null for another mix
        "parts": {"sampler": c.sampler.kind, "replay": c.replay.kind, "dynamic_sampling": c.dynamic_sampling.enabled},
        "model": c.model.path,
        "precision": trainer.precision.name,  # what model.precision resolved to on this device
        "old_logprobs": "recompute" if trainer.recompute_old_logprobs else "behavior",
        "machine": machine_record(trainer.precision),  # where it ran (CPU and its bf16 units, threads, versions)
        "data": {
            "train": c.data.train,
            "train_problems": len(trainer.problems),
            "held_out": trainer.held_out,
            "held_out_problems": len(trainer.test_problems),
        },
        "steps": {"done": trainer.step, "max_steps": c.train.max_steps},
        "budget": {
            "completions_generated": generated,
            "tokens_generated": int(trainer.counters["tokens_generated"]),
            "max_completions": c.train.max_rollouts,
        },
        "wall_seconds": round(trainer.elapsed_seconds(), 1),
        "held_out": {
            "before": _strip(results.get("before")),
            "after": _strip(results.get("after")),
            "table": _table(results),
            "evaluations": [
                {"step": e["step"], "completions": e.get("rollouts_generated", 0), "accuracy": e["accuracy"]}
                for e in evals
            ],
        },
        "training": {
            "reward_mean_first": metrics[0]["reward_mean"] if metrics else None,
            "reward_mean_last": metrics[-1]["reward_mean"] if metrics else None,
            "informative_fraction_mean": float(np.mean([m["informative_fraction"] for m in metrics]))
            if metrics
            else None,
            "nonfinite_skipped": int(trainer.counters.get("nonfinite_skipped", 0)),
        },
        "visits": trainer.coverage.summary(),  # visits per training problem (priorl.sampling.coverage)
        "verifier": {
            "name": c.verifier.name,
            "training": {
                "completions": generated,
                "errors": errors,
                "timeouts": timeouts,
                "failure_rate": (errors + timeouts) / generated if generated else 0.0,
            },
            "evaluation": {"completions": eval_scored, "errors": eval_errors, "timeouts": eval_timeouts},
        },
        "warnings": list(trainer.warnings),
        "paths": {
            "run_dir": str(run),
            "config": str(run / "config.yaml"),
            "metrics": str(run / "metrics.jsonl"),
            "batches": str(run / "batches.jsonl"),
            "eval": str(run / "eval.jsonl"),
            "samples": str(run / "samples.jsonl"),
            "tensorboard": str(run / "tb") if c.logging.tensorboard else None,
            "last_checkpoint": str(last) if last is not None else None,
            "plot": None,
        },
    }
    return summary


def _strip(result: dict | None) -> dict | None:
    return None if result is None else {k: v for k, v in result.items() if k != "examples"}


def plot_run(run_dir: str | Path, title: str) -> tuple[str | None, str | None]:
    """Draw ``progress.png``: training reward and held-out accuracy against completions generated.

    Returns ``(path, None)``, or ``(None, why)`` when there is nothing to plot or no matplotlib.
    """
    run = Path(run_dir)
    metrics = read_jsonl(run / "metrics.jsonl")
    evals = read_jsonl(run / "eval.jsonl")
    if not metrics and not evals:
        return None, "nothing to plot yet (no step and no evaluation logged)"
    plt = pyplot()
    if plt is None:
        return None, NO_MATPLOTLIB
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    if metrics:
        x = np.array([m["rollouts_generated"] for m in metrics], dtype=float)
        y = np.array([m["reward_mean"] for m in metrics], dtype=float)
        left.plot(x, y, alpha=0.35, label="per step")
        window = max(1, len(y) // 20)
        if window > 1:
            smooth = np.convolve(y, np.ones(window) / window, mode="valid")
            left.plot(x[window - 1 :], smooth, label=f"mean of {window} steps")
        left.legend()
    left.set(xlabel="generated completions", ylabel="mean reward", title="training reward")
    left.grid(alpha=0.3)
    if evals:
        x = [e.get("rollouts_generated", 0) for e in evals]
        right.plot(x, [e["accuracy"] for e in evals], marker="o", label="pass@1 (greedy)")
        sampled = [(xi, e["sampled"]) for xi, e in zip(x, evals, strict=True) if "sampled" in e]
        if sampled:
            k = sampled[0][1]["samples"]
            right.plot([s[0] for s in sampled], [s[1]["accuracy"] for s in sampled], marker="s", label=f"avg@{k}")
        right.legend()
    right.set(xlabel="generated completions", ylabel="held-out accuracy", title="held-out accuracy")
    right.grid(alpha=0.3)
    fig.suptitle(title)
    return save_figure(fig, run / PLOT), None


def write_run_summary(trainer, *, status: str, error: str | None = None, plot: bool = True) -> dict:
    """Write ``summary.json`` (and ``progress.png`` when ``plot``) into the run directory; returns the summary."""
    summary = build_summary(trainer, status=status, error=error)
    if plot:
        path, why = plot_run(
            trainer.run_dir, f"{Path(trainer.run_dir).name}: {preset_of(trainer.config) or trainer.config.parts()}"
        )
        summary["paths"]["plot"] = path
        if why:
            summary["plot_note"] = why
    write_atomic(Path(trainer.run_dir) / SUMMARY, (json.dumps(summary, indent=2) + "\n").encode())
    return summary
