"""Run a study: tuning, the choice per preset, evaluation, then ``summary.json``, ``report.md`` and the plots.

:func:`run_study` takes a :class:`~priorl.study.plan.Plan` (:func:`~priorl.study.plan.make_plan`). What it writes:

- ``OUT/study.json`` first: the inputs, the priorl version and git commit, one entry per session;
- every run in ``OUT/tune/PRESET/CELL/seed_S`` and ``OUT/eval/PRESET/CELL/seed_S`` (each a normal run directory);
- at the end ``OUT/summary.json`` (per preset ``chosen``, ``sensitivity``, ``completions_to_target``,
  ``ratio_to_grpo`` and the run-level figures; the targets and how they were fixed; the criterion),
  ``OUT/report.md`` and PNG plots.

Targets are fixed before the evaluation runs. With a tuning phase (``target_kind="gain"``, the default), the
target at fraction f is ``base_test + f * (G - base_val)``: G is tuned grpo's final validation accuracy (the mean
over the tuning seeds at its chosen value), base_val the untrained model's validation accuracy, base_test its test
accuracy (the first evaluation of every run, before any update, the same for every seed). With
``target_kind="absolute"`` the targets are the accuracies given. Without a tuning phase gain targets fall back to
grpo's own final test accuracy in the evaluation runs, and summary.json says so (``targets_from``): exploratory.
"""

from __future__ import annotations

import json
import math
import shutil
import signal

import numpy as np

from priorl.presets import BASELINE
from priorl.study import stats
from priorl.study.plan import (
    MIN_EVAL_POINTS,
    Plan,
    Run,
    cell_name,
    edge_flags,
    grid_flag_keys,
    instability_flags,
    preset_grid,
)
from priorl.study.pool import StudyInterrupted, run_all, stop_signal
from priorl.study.record import (
    STUDY_FILES,
    check_inputs,
    check_machine,
    check_run_config,
    now,
    provenance,
    study_machine,
    write_study,
)
from priorl.study.records import STUDY, load_study, read_json, read_run, run_state


def study_inputs(plan: Plan, targets: list[float], target_kind: str, primary: str) -> dict:
    """What a study is a function of (recorded in study.json; see :data:`priorl.study.record.FIXED_INPUTS`)."""
    return {
        "presets": list(plan.presets), "seeds": list(plan.seeds), "tune_seeds": list(plan.tune_seeds),
        "grid": plan.grid, "overrides": list(plan.overrides), "budget": plan.budget,
        "eval_points": plan.eval_points, "targets": list(targets), "target_kind": target_kind, "primary": primary,
        "criterion": plan.criterion,
        "base_config": plan.base,
    }  # fmt: skip


def inactive_message(plan: Plan) -> str:
    """Why ``plan`` is refused: each preset whose part cannot act, with the reason, and the way out."""
    lines = [f"{preset}: {why}" for preset, reasons in plan.inactive.items() for why in reasons]
    return (
        "a preset's part cannot act within this study's budget, so the comparison would measure it without that "
        "part:\n  " + "\n  ".join(lines) + "\nchange the budget or the settings named, or pass --allow-inactive to "
        "run it anyway (report.md then says which parts never acted)"
    )


CRITERION_TEXT = {
    "mean": "completions to the 90% target on the validation split (seed-mean curve over the tuning seeds; runs that "
    "never reach it rank last), area under the validation curve as the tie-breaker (--criterion mean)",
    "worst": "the worst tuning seed's completions to the 90% target on the validation split (a seed that never "
    "reaches it ranks the cell last, fewer such seeds first), then the seed-mean curve's completions, then its area "
    "(--criterion worst)",
}


def default_primary(presets: list[str]) -> str:
    """The primary comparison when none is named: the first preset after the baseline in ``presets``."""
    others = [p for p in presets if p != BASELINE]
    return others[0] if others else BASELINE


def run_study(
    plan: Plan,
    *,
    targets: tuple[float, ...] = stats.TARGET_FRACTIONS,
    target_kind: str = "gain",
    primary: str | None = None,
    overwrite: bool = False,
    resume: bool = False,
    jobs: int = 1,
    on_run=None,
    on_step=None,
    on_tick=None,
    on_phase=None,
    seed: int = 0,
    allow_inactive: bool = False,
    drop_checkpoints: bool = False,
    on_note=None,
) -> dict:
    """Run ``plan`` and write its summary, report and plots into ``plan.out``; return the summary.

    An ``out`` that holds a study is refused unless ``overwrite`` (its runs are replaced) or ``resume``: finished
    runs are read back, started ones continue from their last checkpoint (exactly as ``priorl train --resume``),
    the others start; a resume that changes an input every run depends on is refused, naming it. ``jobs > 1``
    runs that many at once in worker processes. Callbacks: ``on_run(run, record)`` as each run ends,
    ``on_step(run_key, step, metrics)`` (``jobs == 1``), ``on_tick()`` (``jobs > 1``), ``on_phase(name, runs)``
    as each phase starts, ``on_note(text)`` for what a resume should say (another machine than earlier sessions').
    Each session records its machine in study.json (:func:`~priorl.study.record.study_machine`); a resume whose
    torch version or resolved precision differs from an earlier session's is refused. SIGINT / SIGTERM checkpoint
    every run in flight and raise :class:`StudyInterrupted`;
    no summary is written. ``seed`` seeds the bootstrap.

    A plan in which a preset's part cannot act within the budget (``plan.inactive``: replay whose warm-up outlasts
    the run, a sampler that never revisits a problem, ...) is refused with ``ValueError`` before anything runs,
    unless ``allow_inactive``; then the summary and report.md say which parts never acted.

    ``drop_checkpoints`` deletes a run's ``checkpoints/`` once it has finished (and those of finished runs a resume
    reuses): a finished run needs only its logs, and a real model's checkpoint with optimizer state is large (about
    1.6 GB for SmolLM2-135M). It is recorded, so a resume keeps it unless told otherwise; it changes no result.
    """
    if resume and overwrite:
        raise ValueError("--resume continues a study and --overwrite replaces it: pass one of them")
    primary = primary or default_primary(plan.presets)
    _check_request(plan, targets, target_kind, primary, allow_inactive)
    out = plan.out
    inputs = study_inputs(plan, list(targets), target_kind, primary)
    inputs["allow_inactive"] = allow_inactive  # a resume keeps it (the CLI reads it back)
    inputs["drop_checkpoints"] = drop_checkpoints  # likewise; not an input any run depends on
    study, machine, notes = _open_study(plan, inputs, resume=resume, overwrite=overwrite)
    for note in notes:
        if on_note is not None:
            on_note(note)
    out.mkdir(parents=True, exist_ok=True)
    if overwrite:
        for name in STUDY_FILES:
            (out / name).unlink(missing_ok=True)
    session = {"started": now(), "resume": resume, "jobs": jobs, **provenance(), "machine": machine, "notes": notes}
    study["sessions"].append(session)
    study["status"] = "running"
    (out / "summary.json").unlink(missing_ok=True)  # rewritten when every run is done; never stale beside a stop
    write_study(out, study)

    def phase(name: str, runs: list[Run]) -> dict:
        if on_phase is not None:
            on_phase(name, runs)
        records, stopped = _execute(runs, resume=resume, overwrite=overwrite, jobs=jobs, on_run=on_run,
                                    on_step=on_step, on_tick=on_tick,
                                    drop_checkpoints=drop_checkpoints)  # fmt: skip
        if stopped:
            listed = [_listed(r, records[r.key]) for r in runs]
            session["ended"] = now()
            study.update(status="interrupted", runs=listed)
            write_study(out, study)
            signum = stop_signal() or int(signal.SIGINT)
            raise StudyInterrupted(signum, out, listed, at_once=stopped == "at once")
        return records

    tune_records = phase("tuning", plan.tuning) if plan.tunes else {}
    tuning = choose(plan, tune_records) if plan.tunes else None
    chosen = tuning["chosen"] if tuning else {p: {} for p in plan.presets}
    eval_runs = plan.eval_runs(chosen)
    if resume:
        for run in eval_runs:
            check_run_config(out, run.config)
    eval_records = phase("evaluation", eval_runs)

    summary = _write_results(plan, eval_runs, eval_records, tuning, inputs, study, targets=targets,
                             target_kind=target_kind, primary=primary, seed=seed)  # fmt: skip
    session["ended"] = now()
    listed = [_listed(r, tune_records[r.key]) for r in plan.tuning] + [
        _listed(r, eval_records[r.key]) for r in eval_runs
    ]
    study.update(status="finished", runs=listed)
    write_study(out, study)
    return summary


def _check_request(plan: Plan, targets, target_kind: str, primary: str, allow_inactive: bool) -> None:
    """Refuse, before anything runs, a primary that is not a preset, bad targets, or parts that cannot act."""
    if primary not in plan.presets:
        raise ValueError(f"--primary {primary}: not one of the presets ({', '.join(plan.presets)})")
    if target_kind not in ("gain", "absolute"):
        raise ValueError(f"target kind {target_kind!r}: expected gain or absolute")
    bad = [t for t in targets if not 0 < t <= 1]
    if bad or not targets:
        raise ValueError(f"--targets {targets}: expected values in (0, 1]")
    if plan.inactive and not allow_inactive:
        raise ValueError(inactive_message(plan))


def _open_study(plan: Plan, inputs: dict, *, resume: bool, overwrite: bool) -> tuple[dict, dict, list[str]]:
    """(study record, this session's machine, notes): a resumed study's record checked against ``inputs``, this
    machine and every tuning run's saved config; or a new record, refusing an ``out`` that holds a study unless
    ``overwrite``."""
    out = plan.out
    if resume:
        study = load_study(out)
        if study is None:
            started = [r for r in plan.tuning if (r.dir / "config.yaml").is_file()]
            if not started and not (out / "eval").is_dir():
                raise ValueError(f"--resume {out}: no study there (no {STUDY}); start it without --resume")
            study = {"inputs": inputs, "created": None, "sessions": []}
        check_inputs(out, study, inputs)
        machine = study_machine(plan.base)
        notes = check_machine(out, study, machine)
        for run in plan.tuning:
            check_run_config(out, run.config)
        study["inputs"] = inputs  # presets, grid and seeds may have grown
    else:
        from priorl.grpo.rundir import run_contents

        used = [str(r.dir) for r in plan.tuning if run_contents(r.dir)]
        used += (
            [str(p) for p in (out / "eval").glob("*/*/seed_*") if run_contents(p)] if (out / "eval").is_dir() else []
        )
        mine = [name for name in (STUDY, "summary.json") if (out / name).exists()]
        if not overwrite and (mine or used):
            raise ValueError(
                f"{out} already holds a study ({', '.join((mine + used)[:3])}{' ...' if len(mine + used) > 3 else ''})"
                f": continue it with --resume {out}, pass --overwrite to replace its runs, or choose another --out"
            )
        study = {"inputs": inputs, "created": now(), "sessions": []}
        machine, notes = study_machine(plan.base), []
    return study, machine, notes


def _write_results(plan: Plan, eval_runs: list[Run], eval_records: dict, tuning: dict | None, inputs: dict,
                   study: dict, *, targets, target_kind: str, primary: str, seed: int) -> dict:  # fmt: skip
    """summary.json (with each evaluation run's committed curves), report.md and the plots; returns the summary."""
    out = plan.out
    summary = summarize(plan, eval_runs, eval_records, tuning, targets=targets, target_kind=target_kind,
                        primary=primary, seed=seed)  # fmt: skip
    summary["inactive"] = dict(plan.inactive)  # parts that could not act within the budget (allow_inactive)
    summary["study"] = {**provenance(), **inputs,
                        "created": study.get("created"), "sessions": study["sessions"]}  # fmt: skip
    summary["runs"] = {
        p: [{"seed": r.seed, "phase": "eval", "cell": cell_name(r.cell), "dir": str(r.dir),
             "status": eval_records[r.key]["status"], "wall_seconds": eval_records[r.key].get("wall_seconds"),
             "run_id": (read_json(r.dir / "run.json") or {}).get("run_id"), "config": r.config.model_dump(mode="json"),
             "machine": (read_json(r.dir / "summary.json") or {}).get("machine"),
             **committed_curves(eval_records[r.key])}
            for r in eval_runs if r.preset == p]
        for p in plan.presets
    }  # fmt: skip
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    from priorl.study.report import make_plots, report_markdown

    runs_by_preset = {p: [eval_records[r.key] for r in eval_runs if r.preset == p] for p in plan.presets}
    plots = make_plots(runs_by_preset, summary, out)
    (out / "report.md").write_text(report_markdown(summary, plots))
    return summary


def committed_curves(record: dict) -> dict:
    """What a run's evaluation curve and costs need, kept in summary.json so the study's statistics recompute from
    it alone (benchmarks/cross_study_ratio.py, cost_table.py), after the run directories are gone: each evaluation's
    completions and accuracy, and each step's completions, trained tokens and training seconds."""
    return {
        "evals": [{"rollouts_generated": e["rollouts_generated"], "accuracy": e["accuracy"]}
                  for e in record.get("evals") or []],
        "metrics": [{"rollouts_generated": m["rollouts_generated"], "tokens_trained": m.get("tokens_trained", 0),
                     "time/step": m.get("time/step", 0.0)} for m in record.get("metrics") or []],
    }  # fmt: skip


def _listed(run: Run, rec: dict) -> dict:
    return {"phase": run.phase, "preset": run.preset, "cell": cell_name(run.cell), "seed": run.seed,
            **{k: rec.get(k) for k in ("dir", "status", "checkpoint", "error")}}  # fmt: skip


def _execute(
    runs: list[Run], *, resume: bool, overwrite: bool, jobs: int, on_run, on_step, on_tick, drop_checkpoints=False
):
    """Run what is not finished; (records by run key, False | True | "at once"). With ``drop_checkpoints``, each
    finished run's ``checkpoints/`` is deleted as it finishes (or, for one a resume reuses, at once)."""
    records: dict = {}
    todo = []
    by_key = {r.key: r for r in runs}

    def ended(key, rec):
        if drop_checkpoints and rec.get("status") == "finished":
            shutil.rmtree(by_key[key].dir / "checkpoints", ignore_errors=True)
        if on_run is not None:
            on_run(by_key[key], rec)

    for run in runs:
        state = run_state(run.dir) if resume else ("overwrite" if overwrite else "fresh")
        if state == "finished":
            records[run.key] = {"seed": run.seed, "dir": str(run.dir), "status": "finished", "wall_seconds": None,
                                **read_run(run.dir)}  # fmt: skip
            ended(run.key, {**records[run.key], "reused": True})
        else:
            todo.append((run.key, run.config, state))
    done, at_once = run_all(todo, jobs=jobs, on_run=ended, on_step=on_step, on_tick=on_tick)
    records.update(done)
    stopped = "at once" if at_once else any(rec["status"] in ("interrupted", "not started") for rec in records.values())
    return records, stopped


# ---- the choice ----


def _base_accuracy(curves: list[stats.Curves]) -> float:
    """The untrained model's accuracy: the first evaluation (before any update) of every run, averaged."""
    firsts = [float(v) for c in curves for v in c.acc[:, 0]]
    return float(np.mean(firsts))


def choose(plan: Plan, records: dict) -> dict:
    """Per preset, the grid cell that wins the criterion on validation; the targets' validation numbers.

    The criterion's target is ``base_val + 0.9 * (G_max - base_val)``, G_max being grpo's best final validation
    accuracy over its grid (the same target for every preset and cell). Returns ``chosen`` (preset -> cell),
    ``sensitivity`` (preset -> one entry per cell), ``base_validation``, ``criterion_target``, ``grpo_final``
    (tuned grpo's final validation accuracy), ``edge`` (preset -> flags) and ``curves`` for the plots."""
    x = stats.grid(plan.budget, plan.eval_points)
    by: dict[tuple[str, str], stats.Curves] = {}
    failed: dict[tuple[str, str], int] = {}
    for preset in plan.presets:
        for cell in plan.cells(preset):
            runs = [records[("tune", preset, cell_name(cell), s)] for s in plan.tune_seeds]
            c = stats.curves(x, runs)
            failed[(preset, cell_name(cell))] = sum(1 for r in runs if not r.get("evals"))
            if c is not None:
                by[(preset, cell_name(cell))] = c
    grpo = [by[(BASELINE, cell_name(c))] for c in plan.cells(BASELINE) if (BASELINE, cell_name(c)) in by]
    if not grpo:
        raise ValueError("every tuning run of grpo failed: no target can be set (see error.txt in their directories)")
    base_val = _base_accuracy(list(by.values()))
    g_max = max(float(c.acc.mean(axis=0)[-1]) for c in grpo)
    # grpo that never beats the untrained model leaves no gain to take a share of: no target, the area decides
    target = base_val + stats.CRITERION_FRACTION * (g_max - base_val) if g_max > base_val else math.inf
    chosen, sensitivity, edges, unstable, tuning_curves = {}, {}, {}, {}, {}
    for preset in plan.presets:
        rows = []
        for cell in plan.cells(preset):
            name = cell_name(cell)
            c = by.get((preset, name))
            score = (
                stats.criterion(c, target, plan.criterion)
                if c is not None
                else {"completions": None, "auc": None, "final": None}
            )
            rows.append({"cell": cell, "name": name, **score, "seeds_ok": 0 if c is None else c.acc.shape[0],
                         "seeds_failed": failed[(preset, name)]})  # fmt: skip
            if c is not None:
                tuning_curves.setdefault(preset, {})[name] = c.acc.mean(axis=0).tolist()
        best = min((r for r in rows if r["seeds_ok"]), key=stats.rank_key, default=None)
        if best is None:
            raise ValueError(f"every tuning run of {preset} failed (see error.txt in {plan.out / 'tune'})")
        chosen[preset] = best["cell"]
        for r in rows:
            r["chosen"] = r is best
        sensitivity[preset] = rows
        edges[preset] = edge_flags(preset_grid(preset, plan.grid), best["cell"], grid_flag_keys(preset, plan.grid))
        unstable[preset] = instability_flags(preset_grid(preset, plan.grid), best["cell"], rows)
    grpo_final = next(r["final"] for r in sensitivity[BASELINE] if r["chosen"])
    return {"chosen": chosen, "sensitivity": sensitivity, "base_validation": base_val,
            "criterion_target": None if math.isinf(target) else target,
            "grpo_best_final": g_max, "grpo_final": grpo_final, "edge": edges, "instability": unstable,
            "curves": tuning_curves,
            "x": x.tolist()}  # fmt: skip


# ---- the summary ----


def primary_target(levels: dict[str, float]) -> str | None:
    """The key of the primary comparison's target: the 0.9 fraction of grpo's gain, or with absolute targets
    (keyed by their accuracies) the highest one; None when there is no target."""
    key = f"{stats.CRITERION_FRACTION:g}"
    if key in levels or not levels:
        return key if levels else None
    return max(levels, key=levels.get)


def summarize(plan: Plan, eval_runs: list[Run], records: dict, tuning: dict | None, *, targets, target_kind: str,
              primary: str, seed: int = 0) -> dict:  # fmt: skip
    """summary.json's content from the evaluation runs (and the tuning result)."""
    from priorl.eval.aes import aes

    rng = np.random.default_rng(seed)
    x = stats.grid(plan.budget, plan.eval_points)
    runs = {p: [records[r.key] for r in eval_runs if r.preset == p] for p in plan.presets}
    curves = {p: stats.curves(x, rs) for p, rs in runs.items()}
    base = curves.get(BASELINE)
    base_test = _base_accuracy([c for c in curves.values() if c is not None]) if any(curves.values()) else None
    levels, source = {}, None
    if target_kind == "absolute":
        levels = {f"{t:g}": float(t) for t in targets}
        source = "absolute accuracies given (--target-kind absolute)"
    elif tuning is not None and base_test is not None:
        gain = tuning["grpo_final"] - tuning["base_validation"]
        levels = {f"{t:g}": base_test + t * gain for t in targets} if gain > 0 else {}
        source = ("tuning runs: base test accuracy + f x (tuned grpo's final validation accuracy - base validation "
                  "accuracy)") if gain > 0 else "n/a: tuned grpo did not improve on the validation split"  # fmt: skip
    elif base is not None and base_test is not None:
        gain = float(base.acc.mean(axis=0)[-1]) - base_test
        levels = {f"{t:g}": base_test + t * gain for t in targets} if gain > 0 else {}
        source = ("exploratory: grpo's final test accuracy in these evaluation runs (no tuning phase, so no target "
                  "fixed in advance)") if gain > 0 else "n/a: grpo did not improve"  # fmt: skip
    summary: dict = {
        "budget": plan.budget, "baseline": BASELINE, "eval_points": plan.eval_points,
        "criterion": CRITERION_TEXT[plan.criterion],
        "criterion_name": plan.criterion,
        "primary": {"preset": primary, "baseline": BASELINE, "target": primary_target(levels),
                    "note": "named before the runs; every other comparison is secondary"},
        "targets": {k: {"accuracy": v} for k, v in levels.items()}, "targets_from": source,
        "base_test_accuracy": base_test, "coarse_evaluations": plan.eval_points < MIN_EVAL_POINTS,
        "tuning": None if tuning is None else {k: tuning[k] for k in ("base_validation", "criterion_target",
                                                                      "grpo_best_final", "grpo_final")},
        "presets": {},
    }  # fmt: skip
    if tuning is not None:
        summary["tuning"].update(seeds=plan.tune_seeds, grid=plan.grid)
    base_len = _final_mean(runs.get(BASELINE, []), "mean_length")
    base_final = None if base is None else float(base.acc.mean(axis=0)[-1])
    for preset, rs in runs.items():
        ok = [r for r in rs if r.get("evals")]
        c = curves[preset]
        finals = [r["evals"][-1]["accuracy"] for r in ok]
        entry: dict = {
            "chosen": tuning["chosen"][preset] if tuning else {},
            "sensitivity": tuning["sensitivity"][preset] if tuning else [],
            "edge": tuning["edge"][preset] if tuning else [],
            "instability": tuning["instability"][preset] if tuning else [],
            "seeds_ok": len(ok), "seeds_failed": len(rs) - len(ok),
            "errors": [r["error"] for r in rs if r.get("error")],
            "final_accuracy_mean": float(np.mean(finals)) if finals else None,
            "final_accuracy_std": float(np.std(finals)) if finals else None,
            "final_accuracy_ci95": stats.t_interval(finals),
            "completions_to_target": {}, "ratio_to_grpo": {},
            "informative_fraction": _mean_metric(ok, "informative_fraction"),
            "aes_vs_grpo": None,
            "wall_s_mean": _mean([r.get("wall_seconds") for r in ok]),
            "train_seconds_mean": _mean_total(ok, "time/step"),
            "tokens_trained_mean": _mean_total(ok, "tokens_trained"),
            "tokens_generated_mean": _mean_last(ok, "tokens_generated"),
            "rollouts_generated_mean": _mean_last(ok, "rollouts_generated"),
            "updates_mean": _mean_total(ok, "updates"),
        }  # fmt: skip
        for key, level in levels.items():
            if c is not None:
                entry["completions_to_target"][key] = stats.to_target(c, level, rng=rng)
            if c is not None and base is not None:
                entry["ratio_to_grpo"][key] = stats.ratio_to_baseline(c, base, level, rng=rng)
        mean_len = _final_mean(ok, "mean_length")
        if finals and base_final and base_len and mean_len is not None:
            entry["aes_vs_grpo"] = aes(entry["final_accuracy_mean"], mean_len, base_final, base_len)
        summary["presets"][preset] = entry
    summary["curves"] = {
        p: {"rollouts": c.x.tolist(), "mean": c.acc.mean(axis=0).tolist(), "std": c.acc.std(axis=0).tolist()}
        for p, c in curves.items() if c is not None
    }  # fmt: skip
    if tuning is not None:
        summary["tuning_curves"] = {"rollouts": tuning["x"], "by_preset": tuning["curves"]}
    return summary


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


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
