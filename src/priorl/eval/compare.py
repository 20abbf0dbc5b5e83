"""`priorl compare`: every preset and seed at the same budget of generated completions, side by side.

Each run is a normal ``priorl train`` run in ``OUT/PRESET/seed_S`` that stops when it has generated
``budget`` completions and evaluates held-out accuracy every ``budget / eval_points`` completions. The
summary reads those runs' ``eval.jsonl`` and ``metrics.jsonl``; a run that fails is reported and the
others still finish.

A study survives being stopped. ``OUT/study.json`` records what it was started with (presets, seeds, budget,
eval points, base config) and what produced it (priorl version, git commit); ``run_compare(..., resume=True)``
(``priorl compare --resume OUT``) keeps the finished runs, continues the unfinished ones from their last
checkpoint exactly as ``priorl train --resume`` does, and starts the others, after refusing any change to those
inputs. SIGINT or SIGTERM checkpoints every run in flight (this process's, or each worker's: the signal is
forwarded to them) and raises :class:`StudyInterrupted`; SIGKILL ends the workers too, and a run then loses at
most the work since its last checkpoint (``checkpoint.every_minutes``, 10 by default).

A *preset* names the parts of a run and the sampler options that define it (:data:`priorl.presets.PRESETS`);
everything else comes from the base config, so all presets of one comparison share model, data, batch shape and
optimizer.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from priorl.config import ConfigError, RunConfig, apply_overrides
from priorl.eval.aes import aes
from priorl.eval.plots import pyplot
from priorl.eval.plots import save_figure as _save
from priorl.presets import BASELINE, PRESETS, apply_preset  # the presets are defined once, in priorl.presets


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
    """The config of one run: ``base`` with the preset laid over it (:func:`priorl.presets.apply_preset`: its
    parts and pinned sampler options; the options of parts it turns off back at their defaults), the seed, and
    the budget."""
    data, _ = apply_preset(base.model_dump(mode="json"), preset)
    data.update(seed=seed, out_dir=str(out / preset.replace("+", "_") / f"seed_{seed}"))
    data["train"].update(max_steps=10**9, max_rollouts=budget)
    data["eval"].update(before=True, after=True, every=0, every_rollouts=max(1, budget // eval_points))
    data["logging"].update(progress=False, tensorboard=False)
    data["checkpoint"].update(keep_last=1)  # the base's schedule (every N steps, every M minutes) bounds a kill's loss
    return RunConfig.model_validate(data)


# Signals this process was asked to stop by, first one first. A worker notes one that comes while no run is
# training (loading, or between runs) and then starts nothing more; the parent notes one and forwards it.
_STOP: list[int] = []


def _note_stop(signum: int, frame) -> None:
    """A worker's SIGINT / SIGTERM handler outside training: remember the stop (a run that is loading sees it)."""
    if not _STOP:
        _STOP.append(signum)


def _run_reporter(on_step=None):
    """What a run of a study reports to its trainer: each step to ``on_step``; and a stop that came while the run
    was loading (before the trainer's own signal handlers were in place) is passed on to those handlers.
    Built here because priorl.grpo imports torch, which ``import priorl.eval.compare`` must not."""
    from priorl.grpo.progress import Reporter

    class RunReporter(Reporter):
        def start(self, trainer) -> None:
            if _STOP and threading.current_thread() is threading.main_thread():
                signal.raise_signal(_STOP[0])  # to the trainer's handler: checkpoint, then TrainingInterrupted

        def step(self, step: int, metrics: dict) -> None:
            if on_step is not None:
                on_step(step, metrics)

    return RunReporter()


def _run_one(
    cfg_data: dict,
    overwrite: bool = False,
    *,
    on_step=None,
    threads: int | None = None,
    resume: bool = False,
    worker: bool = False,
) -> dict:
    """Train one run of a comparison (``resume``: continue it from its last checkpoint); its record: ``seed``,
    ``dir``, ``status`` (finished, failed, interrupted or not started), ``wall_seconds``, ``evals``,
    ``metrics``, and ``error`` for a failed run or ``signal``, ``step``, ``checkpoint`` for an interrupted one.
    Top-level so a worker process can run it.

    A SIGINT / SIGTERM checkpoints the last completed step (the trainer does) and the run is *interrupted*, not
    failed. A second one stops it at once: in a worker the record says so; in this process KeyboardInterrupt
    goes on up.
    """
    from priorl.grpo.trainer import Trainer, TrainingInterrupted

    cfg = RunConfig.model_validate(cfg_data)
    record: dict = {"seed": cfg.seed, "dir": cfg.out_dir, "status": "not started"}
    if _STOP:  # asked to stop before this run began
        return {**record, "evals": [], "metrics": [], "wall_seconds": None}
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    run_dir = Path(cfg.out_dir)
    trainer = None
    try:
        if resume:
            (run_dir / "error.txt").unlink(missing_ok=True)  # a failed run tried again
        trainer = Trainer(cfg, resume=resume, overwrite=overwrite)
        if not _STOP:  # (a stop that came while it loaded leaves it to be resumed from where it was)
            record["status"] = "running"
            trainer.train(progress=_run_reporter(on_step))
            record["status"] = "finished"
    except TrainingInterrupted as exc:
        _STOP[:] = _STOP or [exc.signum]  # this process starts nothing more
        checkpoint = None if exc.checkpoint is None else str(exc.checkpoint)
        name = signal.Signals(exc.signum).name
        record.update(status="interrupted", signal=name, step=exc.step, checkpoint=checkpoint)
    except KeyboardInterrupt:  # a second signal: stopped at once, nothing saved since the last checkpoint
        first = trainer.signals.signum if trainer is not None else None  # the signal the trainer took first
        _STOP[:] = _STOP or ([first] if first else [])
        if not worker:
            raise
        last = trainer.last_checkpoint() if trainer is not None else None
        record.update(status="interrupted", signal="second signal", checkpoint=None if last is None else str(last))
    except Exception as exc:  # noqa: BLE001 - a failed run is reported, the others go on
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "error.txt").write_text(traceback.format_exc())
    finally:
        if trainer is not None:
            trainer.close()
    if record["status"] == "running":
        record["status"] = "not started"
    record["wall_seconds"] = time.perf_counter() - t0
    record.update(_read_run(run_dir) if record["status"] == "finished" else {"evals": [], "metrics": []})
    return record


def _read_run(run_dir: Path) -> dict:
    """A finished run's evaluations and metrics, and its training time over all its sessions (its summary's)."""
    out = {"evals": _read(run_dir / "eval.jsonl"), "metrics": _read(run_dir / "metrics.jsonl")}
    summary = _read_json(run_dir / "summary.json")
    if summary is not None and summary.get("wall_seconds") is not None:
        out["wall_seconds"] = float(summary["wall_seconds"])
    return out


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


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
            "wall_s_mean": _mean([r.get("wall_seconds") for r in ok]),
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


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


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


STUDY = "study.json"  # what a study was started with and what produced it; written first, updated at the end
STUDY_FILES = (
    STUDY, "summary.json", "report.md", "accuracy_vs_rollouts.png", "informative_fraction.png", "sampler_pools.png",
    "replay_age.png",
)  # fmt: skip
# Keys of a run's config that a resumed study may find changed in the run's saved config.yaml: where the run is,
# and what alters no saved state and nothing training does (see SAFE_RESUME_CHANGES in cli.py).
_RUN_KEYS_FREE = ("out_dir", "checkpoint.", "logging.")


class StudyInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped a study: every run in flight was checkpointed (unless ``at_once``: a second
    signal), and ``priorl compare --resume OUT`` continues it. ``runs`` are the records, each with its
    ``status`` (finished, failed, interrupted or not started) and ``dir``."""

    def __init__(self, signum: int, out: Path, runs: list[dict], *, at_once: bool = False) -> None:
        self.signum, self.out, self.runs, self.at_once = signum, Path(out), runs, at_once
        counts = self.counts()
        how = "at once (a second signal; each run continues from its last checkpoint)" if at_once else ""
        super().__init__(
            f"stopped by {signal.Signals(signum).name}{' ' + how if how else ''}: {counts['checkpointed']} runs "
            f"checkpointed, {counts['finished']} finished"
            + (f", {counts['failed']} failed" if counts["failed"] else "")
            + (f", {counts['to start']} to start" if counts["to start"] else "")
        )

    def counts(self) -> dict[str, int]:
        """Runs finished, failed, checkpointed (interrupted with a checkpoint), and to start (the others)."""
        out = {"finished": 0, "failed": 0, "checkpointed": 0, "to start": 0}
        for r in self.runs:
            if r["status"] in ("finished", "failed"):
                out[r["status"]] += 1
            elif r["status"] == "interrupted" and r.get("checkpoint"):
                out["checkpointed"] += 1
            else:
                out["to start"] += 1
        return out

    @property
    def exit_code(self) -> int:
        """The shell's convention for death by signal: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum


def provenance() -> dict:
    """What produced a study: ``priorl_version``, and ``git_commit`` / ``git_dirty`` of the checkout priorl is
    imported from (None when it is not imported from a git checkout, e.g. an installed wheel)."""
    import priorl

    commit = dirty = None
    package = Path(priorl.__file__).resolve().parent
    try:
        top, head = _git(package, "rev-parse", "--show-toplevel", "HEAD").split()
        # only priorl's own repository: not one that merely contains an installed copy (a venv inside a project)
        if (Path(top) / "src" / "priorl").resolve() == package:
            commit = head
            dirty = bool(_git(package, "status", "--porcelain", "--untracked-files=no").strip())
    except (OSError, ValueError, subprocess.SubprocessError):
        pass
    return {"priorl_version": priorl.__version__, "git_commit": commit, "git_dirty": dirty}


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
    ).stdout  # fmt: skip


def study_inputs(base: RunConfig, presets: list[str], seeds: list[int], budget: int, eval_points: int) -> dict:
    """What a study is a function of: a resumed study must be given the same."""
    return {
        "presets": list(presets), "seeds": list(seeds), "budget": budget, "eval_points": eval_points,
        "base_config": base.model_dump(mode="json"),
    }  # fmt: skip


def load_study(out: str | Path) -> dict | None:
    """``OUT/study.json``, or None when there is none. Raises ValueError for one that cannot be read."""
    path = Path(out) / STUDY
    if not path.exists():
        return None
    data = _read_json(path)
    if data is None or not isinstance(data.get("inputs"), dict):
        raise ValueError(f"{path} is not a priorl compare study record (unreadable, or no 'inputs')")
    return data


def resume_base(study: dict, overrides: list[str]) -> RunConfig:
    """The base config a study recorded, with ``--set`` overrides applied (ConfigError names a bad one)."""
    data = apply_overrides(json.loads(json.dumps(study["inputs"]["base_config"])), list(overrides))
    try:
        return RunConfig.model_validate(data)
    except ValueError as exc:
        raise ConfigError(f"the base config recorded in study.json with --set overrides: {exc}") from None


def _flat(d: dict, prefix: str = "") -> dict:
    out: dict = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _changes(old: dict, new: dict, *, free: tuple[str, ...] = ()) -> list[tuple[str, object, object]]:
    """(dotted key, old value, new value) for each key that differs, except the ``free`` ones (prefixes)."""
    a, b = _flat(old), _flat(new)
    missing = "(unset)"
    return [
        (k, a.get(k, missing), b.get(k, missing))
        for k in sorted(set(a) | set(b))
        if a.get(k, missing) != b.get(k, missing) and not k.startswith(free)
    ]


def _show(key: str, old, new) -> str:
    def short(v) -> str:
        text = json.dumps(v) if not isinstance(v, str) else v
        return text if len(text) <= 60 else text[:57] + "..."

    return f"{key} ({short(old)} there, {short(new)} now)"


def _check_resume(out: Path, inputs: dict, plan: list[tuple[str, int, RunConfig]]) -> None:
    """Refuse a resume whose inputs differ from the study's (study.json) or from a run's saved config, naming
    the keys; nothing is written before this passes."""
    study = load_study(out)
    started = [cfg for _, _, cfg in plan if (Path(cfg.out_dir) / "config.yaml").is_file()]
    if study is None and not started:
        raise ValueError(f"--resume {out}: no study there (no {STUDY} and none of its runs); start it without --resume")
    if study is not None:
        old = {k: v for k, v in study["inputs"].items() if k != "base_config"}
        new = {k: v for k, v in inputs.items() if k != "base_config"}
        changed = [_show(k, a, b) for k, a, b in _changes(old, new)]
        base_changes = _changes(study["inputs"]["base_config"], inputs["base_config"], free=("out_dir",))
        changed += [_show(k, a, b) for k, a, b in base_changes]
        if changed:
            raise ValueError(
                f"--resume {out}: the study there was started with other inputs: {'; '.join(changed)}. A resumed "
                f"study runs what it started: pass the same options or leave them out (the recorded ones apply); "
                f"for a different study choose another --out"
            )
    import yaml

    for _, _, cfg in plan:
        saved_path = Path(cfg.out_dir) / "config.yaml"
        if not saved_path.is_file():
            continue
        try:
            saved = yaml.safe_load(saved_path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"--resume {out}: cannot read {saved_path} ({exc})") from None
        changed = _changes(saved or {}, cfg.model_dump(mode="json"), free=_RUN_KEYS_FREE)
        if changed:
            raise ValueError(
                f"--resume {out}: the run in {cfg.out_dir} was started with another config: "
                f"{'; '.join(_show(k, a, b) for k, a, b in changed)}; it cannot be continued as part of this study"
            )


def _run_state(run_dir: Path) -> str:
    """finished (its summary says so), resume (started: it has its config and run id or a checkpoint),
    overwrite (only traces of a run that never started, e.g. error.txt) or fresh (nothing there)."""
    from priorl.grpo.checkpoint import list_checkpoints
    from priorl.grpo.rundir import run_contents

    summary = _read_json(run_dir / "summary.json")
    if summary is not None and summary.get("status") == "finished":
        return "finished"
    if (run_dir / "config.yaml").is_file() and ((run_dir / "run.json").is_file() or list_checkpoints(run_dir)):
        return "resume"
    return "overwrite" if run_contents(run_dir) else "fresh"


def _last_checkpoint(run_dir: Path) -> str | None:
    from priorl.grpo.checkpoint import list_checkpoints

    done = list_checkpoints(run_dir)
    return str(done[-1]) if done else None


def _write_study(out: Path, study: dict) -> None:
    from priorl.statefile import write_atomic

    write_atomic(out / STUDY, (json.dumps(study, indent=2) + "\n").encode())


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


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
    resume: bool = False,
) -> dict:
    """Run every preset × seed, then write ``summary.json``, ``report.md`` and the plots into ``out``.

    An ``out`` that holds a comparison (its study.json or summary.json, or any of the run directories this one
    would write) is refused unless ``overwrite``, which replaces those runs (each cleared as ``priorl train
    --overwrite`` does) and the comparison's own files, or ``resume``, which continues it: finished runs are
    read back, started ones continue from their last checkpoint (``Trainer(resume=True)``, so exactly as
    ``priorl train --resume``), the others start. A resume whose presets, seeds, budget, eval points or base
    config differ from the study's (``study.json``), or from a run's saved config, is refused naming the keys,
    before anything is written.

    ``jobs > 1`` runs that many runs at once, each in its own process with ``cpu_count // jobs`` torch
    threads; ``on_run(preset, seed)`` is then called as each run finishes and ``on_step`` is not called.
    Each run is seeded by its own config, so ``jobs`` changes only wall times (and float rounding, through
    the thread count).

    SIGINT / SIGTERM (when called from the main thread) stop the study: each run in flight checkpoints its last
    completed step (in workers too: the signal is forwarded to each), no further run starts, study.json records
    the stop, no summary is written, and :class:`StudyInterrupted` is raised. A second signal stops at once
    (the workers are killed; each run continues from its last checkpoint).
    """
    unknown = [p for p in presets if p not in PRESETS]
    if unknown:
        raise ValueError(f"unknown preset(s) {unknown}; choose from {', '.join(PRESETS)}")
    if BASELINE not in presets:
        raise ValueError(f"--presets must include the baseline '{BASELINE}' (accuracy targets and AES refer to it)")
    if resume and overwrite:
        raise ValueError("--resume continues a study and --overwrite replaces it: pass one of them")
    out = Path(out)
    plan = [
        (preset, seed, run_config(base, preset, seed, budget, eval_points, out)) for preset in presets for seed in seeds
    ]
    inputs = study_inputs(base, presets, seeds, budget, eval_points)
    if resume:
        _check_resume(out, inputs, plan)
        states = {(p, s): _run_state(Path(cfg.out_dir)) for p, s, cfg in plan}
        study = load_study(out) or {"inputs": inputs, "created": None, "sessions": []}  # (study.json came later)
    else:
        from priorl.grpo.rundir import run_contents

        used = [cfg.out_dir for _, _, cfg in plan if run_contents(cfg.out_dir)]
        mine = [name for name in (STUDY, "summary.json") if (out / name).exists()]
        if not overwrite and (mine or used):
            raise ValueError(
                f"{out} already holds a comparison ({', '.join((mine + used)[:3])}"
                f"{' ...' if len(mine + used) > 3 else ''}): continue it with --resume {out}, pass --overwrite to "
                "replace its runs, or choose another --out"
            )
        states = {(p, s): ("overwrite" if overwrite else "fresh") for p, s, _ in plan}
        study = {"inputs": inputs, "created": _now(), "sessions": []}
    out.mkdir(parents=True, exist_ok=True)
    if overwrite:
        for name in STUDY_FILES:
            (out / name).unlink(missing_ok=True)
    session = {"started": _now(), "resume": resume, "jobs": jobs, **provenance()}
    study["sessions"].append(session)
    study["status"] = "running"
    (out / "summary.json").unlink(missing_ok=True)  # rewritten when every run is done; never stale beside a stop
    _write_study(out, study)

    records: dict[tuple[str, int], dict] = {}
    todo = []
    for preset, seed, cfg in plan:
        if states[(preset, seed)] == "finished":
            records[(preset, seed)] = {"seed": seed, "dir": cfg.out_dir, "status": "finished", "wall_seconds": None,
                                       **_read_run(Path(cfg.out_dir))}  # fmt: skip
        else:
            todo.append((preset, seed, cfg, states[(preset, seed)]))

    _STOP.clear()
    at_once = False
    handlers = _install_stop_handlers()
    try:
        if jobs <= 1:
            for preset, seed, cfg, state in todo:
                if _STOP:
                    records[(preset, seed)] = {"seed": seed, "dir": cfg.out_dir, "status": "not started"}
                    continue
                if on_run is not None:
                    on_run(preset, seed)
                records[(preset, seed)] = _run_one(
                    cfg.model_dump(mode="json"), state == "overwrite", on_step=on_step, resume=state == "resume"
                )
        else:
            at_once = _run_pool(todo, records, jobs=jobs, on_run=on_run)
    except KeyboardInterrupt:  # a second signal, in this process
        at_once = True
    finally:
        _restore_handlers(handlers)
    runs: dict[str, list[dict]] = {p: [] for p in presets}
    for preset, seed, cfg in plan:
        rec = records.get((preset, seed)) or {"seed": seed, "dir": cfg.out_dir, "status": "interrupted"}
        if rec["status"] == "interrupted" and not rec.get("checkpoint"):  # e.g. its worker killed at once
            rec["checkpoint"] = _last_checkpoint(Path(cfg.out_dir))
        rec.setdefault("evals", [])
        rec.setdefault("metrics", [])
        runs[preset].append(rec)
    listed = [dict(preset=p, **{k: r.get(k) for k in ("seed", "dir", "status", "checkpoint", "error")})
              for p, rs in runs.items() for r in rs]  # fmt: skip
    stopped = at_once or any(r["status"] in ("interrupted", "not started") for r in listed)
    session["ended"] = _now()
    study["status"] = "interrupted" if stopped else "finished"
    study["runs"] = listed
    if stopped:
        _write_study(out, study)
        signum = _STOP[0] if _STOP else int(signal.SIGINT)
        raise StudyInterrupted(signum, out, listed, at_once=at_once)

    summary = summarize(runs, budget)
    summary["study"] = {**provenance(), **inputs, "created": study.get("created"), "sessions": study["sessions"]}
    configs = {(p, s): cfg.model_dump(mode="json") for p, s, cfg in plan}
    summary["runs"] = {
        preset: [
            {"seed": r["seed"], "dir": r["dir"], "status": r["status"], "wall_seconds": r.get("wall_seconds"),
             "run_id": (_read_json(Path(r["dir"]) / "run.json") or {}).get("run_id"),
             "config": configs[(preset, r["seed"])]}
            for r in rs
        ]
        for preset, rs in runs.items()
    }  # fmt: skip
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    plots = make_plots(runs, summary, out)
    (out / "report.md").write_text(report_markdown(summary, plots, len(seeds)))
    _write_study(out, study)
    return summary


def _install_stop_handlers() -> dict:
    """In the main thread: SIGINT / SIGTERM note a stop (the loop then starts nothing more and, with workers,
    forwards it to them); a second one raises KeyboardInterrupt. A run training in this process has the
    trainer's own handlers meanwhile, which checkpoint it."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def on_signal(signum: int, frame) -> None:
        if _STOP:
            raise KeyboardInterrupt
        _STOP.append(signum)
        os.write(
            2,
            f"\n{signal.Signals(signum).name}: stopping the study after a checkpoint of each run in flight "
            "(send it again to quit at once, without saving)\n".encode(),
        )

    return {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}


def _restore_handlers(previous: dict) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def _run_pool(todo: list, records: dict, *, jobs: int, on_run) -> bool:
    """Run ``todo`` in ``jobs`` spawned workers, filling ``records``; True when a second signal ended it at once.

    The workers are in their own process group, so a Ctrl-C in the terminal reaches this process only: it
    forwards each signal once to every worker (when the worker's handler is in place), cancels the runs not
    yet begun, and waits for the others to checkpoint and return.
    """
    # One process per run (spawned: no state shared with this one), each pinned to its share of the cores,
    # so that runs side by side neither fight over threads nor see each other's RNG streams.
    threads = max(1, (os.cpu_count() or 1) // jobs)
    pool = ProcessPoolExecutor(
        max_workers=jobs, mp_context=get_context("spawn"), initializer=_init_worker, initargs=(os.getpid(),)
    )
    futures = {}
    told: set[int] = set()
    try:
        with _children_start_deaf():
            for preset, seed, cfg, state in todo:
                future = pool.submit(
                    _run_one, cfg.model_dump(mode="json"), state == "overwrite", threads=threads,
                    resume=state == "resume", worker=True,
                )  # fmt: skip
                futures[future] = (preset, seed, cfg)
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in done:
                preset, seed, cfg = futures[future]
                records[(preset, seed)] = rec = _collect(future, cfg)
                if on_run is not None and rec["status"] in ("finished", "failed"):
                    on_run(preset, seed)
            if _STOP:
                for future in [f for f in pending if f.cancel()]:
                    pending.discard(future)
                    preset, seed, cfg = futures[future]
                    records[(preset, seed)] = {"seed": seed, "dir": cfg.out_dir, "status": "not started"}
                for pid in _worker_pids(pool) - told:
                    if _catches(pid, _STOP[0]):
                        os.kill(pid, _STOP[0])
                        told.add(pid)
    except KeyboardInterrupt:  # the second signal: the workers go at once, their runs keep their last checkpoints
        for pid in _worker_pids(pool):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        pool.shutdown(wait=False, cancel_futures=True)
        return True
    pool.shutdown(wait=True)
    return False


def _collect(future, cfg: RunConfig) -> dict:
    record = {"seed": cfg.seed, "dir": cfg.out_dir}
    if future.cancelled():
        return {**record, "status": "not started"}
    exc = future.exception()
    if exc is None:
        return future.result()
    if _STOP or isinstance(exc, BrokenProcessPool):
        # its worker died (killed, or a signal reached it before it could handle one): resumable, not failed
        return {**record, "status": "interrupted", "error": f"{type(exc).__name__}: {exc}"}
    return {**record, "status": "failed", "error": f"{type(exc).__name__}: {exc}"}


@contextmanager
def _children_start_deaf():
    """Processes started inside ignore SIGINT and SIGTERM until their initializer installs handlers (an ignored
    signal stays ignored across exec), so a signal at that moment cannot kill a worker half-started. This
    thread blocks both meanwhile, so one sent to this process waits for its handler instead of being lost."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    both = {signal.SIGINT, signal.SIGTERM}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, both)
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in both}
    try:
        yield
    finally:
        _restore_handlers(previous)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _worker_pids(pool: ProcessPoolExecutor) -> set[int]:
    processes = getattr(pool, "_processes", None) or {}  # CPython's pid -> Process map of the pool's workers
    return {pid for pid, proc in list(processes.items()) if proc.is_alive()}


def _catches(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has a handler for ``signum`` (Linux: /proc; elsewhere assumed)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    except (OSError, ValueError):
        pass
    return True


def _init_worker(parent_pid: int) -> None:
    """Worker initializer: dies with the parent; own process group (a terminal's Ctrl-C reaches the parent,
    which forwards it once); SIGINT / SIGTERM outside training note a stop (see :func:`_run_one`)."""
    _die_with_parent(parent_pid)
    os.setpgrp()
    both = {signal.SIGINT, signal.SIGTERM}
    for s in both:
        signal.signal(s, _note_stop)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, both)  # started while the parent blocked them (a spawn keeps the mask)


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
