"""The worker pool of a study: each run is a normal ``priorl train`` run, in this process or in spawned workers.

A run reports ``finished``, ``failed``, ``interrupted`` or ``not started``; a failed run is recorded and the
others go on. SIGINT or SIGTERM checkpoints every run in flight (this process's, or each worker's: the signal is
forwarded to them) and raises :class:`StudyInterrupted`; SIGKILL ends the workers too (they die with the parent),
and a run then loses at most the work since its last checkpoint (``checkpoint.every_minutes``, 10 by default).
"""

from __future__ import annotations

import os
import signal
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path

from priorl.config import RunConfig
from priorl.study.records import read_run

# Signals this process was asked to stop by, first one first. A worker notes one that comes while no run is
# training (loading, or between runs) and then starts nothing more; the parent notes one and forwards it.
_STOP: list[int] = []


def stop_signal() -> int | None:
    """The first SIGINT / SIGTERM this process was asked to stop by, or None."""
    return _STOP[0] if _STOP else None


def _note_stop(signum: int, frame) -> None:
    """A worker's SIGINT / SIGTERM handler outside training: remember the stop (a run that is loading sees it)."""
    if not _STOP:
        _STOP.append(signum)


def _run_reporter(on_step=None):
    """What a run of a study reports to its trainer: each step to ``on_step``; and a stop that came while the run
    was loading (before the trainer's own signal handlers were in place) is passed on to those handlers.
    Built here because priorl.grpo imports torch, which ``import priorl.study`` must not."""
    from priorl.grpo.progress import Reporter

    class RunReporter(Reporter):
        def start(self, trainer) -> None:
            if _STOP and threading.current_thread() is threading.main_thread():
                signal.raise_signal(_STOP[0])  # to the trainer's handler: checkpoint, then TrainingInterrupted

        def step(self, step: int, metrics: dict) -> None:
            if on_step is not None:
                on_step(step, metrics)

        def warn(self, message: str) -> None:
            """Kept in the run's summary.json, which ``priorl compare`` echoes once per study (not once a run)."""

    return RunReporter()


def run_one(
    cfg_data: dict,
    overwrite: bool = False,
    *,
    on_step=None,
    threads: int | None = None,
    resume: bool = False,
    worker: bool = False,
) -> dict:
    """Train one run of a study (``resume``: continue it from its last checkpoint); its record: ``seed``,
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
    if cfg.train.engine == "trl":
        record.update(_run_trl(cfg, overwrite or resume, on_step))
        record["wall_seconds"] = time.perf_counter() - t0
        record.update(read_run(run_dir) if record["status"] == "finished" else {"evals": [], "metrics": []})
        return record
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
    record.update(read_run(run_dir) if record["status"] == "finished" else {"evals": [], "metrics": []})
    return record


def _run_trl(cfg: RunConfig, overwrite: bool, on_step) -> dict:
    """A ``train.engine: trl`` run (:mod:`priorl.integrations.trl_engine`): status and what went wrong. It keeps
    no checkpoint, so a stop ends it *interrupted* with nothing to resume from, and ``--resume`` starts it over."""
    from priorl.integrations.trl_engine import EngineStopped, train_with_trl

    run_dir = Path(cfg.out_dir)
    try:
        train_with_trl(cfg, overwrite=overwrite, on_step=on_step, stop=lambda: bool(_STOP))
        return {"status": "finished"}
    except EngineStopped as exc:
        name = signal.Signals(_STOP[0]).name if _STOP else "stop"
        return {"status": "interrupted", "signal": name, "step": exc.generation, "checkpoint": None}
    except Exception as exc:  # noqa: BLE001 - a failed run is reported, the others go on
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "error.txt").write_text(traceback.format_exc())
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}


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


def _last_checkpoint(run_dir: Path) -> str | None:
    from priorl.grpo.checkpoint import list_checkpoints

    done = list_checkpoints(run_dir)
    return str(done[-1]) if done else None


def run_all(todo: list, *, jobs: int = 1, on_run=None, on_step=None, on_tick=None) -> tuple[dict, bool]:
    """Run ``todo`` (``(key, cfg, state)``: ``state`` is fresh, overwrite or resume) and return ``(records, at_once)``:
    each key's record (see :func:`run_one`) and whether a second signal stopped it at once.

    ``jobs > 1`` runs that many at once, each in a spawned process with ``cpu_count // jobs`` torch threads;
    ``on_run(key, record)`` is called as each run ends, ``on_step(key, step, metrics)`` after each step of a run in
    this process (``jobs == 1`` only), and ``on_tick()`` about every 0.2 s while workers run. SIGINT / SIGTERM
    (from the main thread) stop it: runs in flight checkpoint, no more start (their records say ``not started``).
    """
    records: dict = {}
    at_once = False
    handlers = _install_stop_handlers()
    try:
        if jobs <= 1:
            for key, cfg, state in todo:
                if _STOP:
                    records[key] = {"seed": cfg.seed, "dir": cfg.out_dir, "status": "not started"}
                    continue
                step_cb = None if on_step is None else (lambda step, m, key=key: on_step(key, step, m))
                records[key] = run_one(
                    cfg.model_dump(mode="json"), state == "overwrite", on_step=step_cb, resume=state == "resume"
                )
                if on_run is not None:
                    on_run(key, records[key])
        else:
            at_once = _run_pool(todo, records, jobs=jobs, on_run=on_run, on_tick=on_tick)
    except KeyboardInterrupt:  # a second signal, in this process
        at_once = True
    finally:
        _restore_handlers(handlers)
    for key, cfg, _ in todo:
        rec = records.get(key) or {"seed": cfg.seed, "dir": cfg.out_dir, "status": "interrupted"}
        if rec["status"] == "interrupted" and not rec.get("checkpoint"):  # e.g. its worker killed at once
            rec["checkpoint"] = _last_checkpoint(Path(cfg.out_dir))
        rec.setdefault("evals", [])
        rec.setdefault("metrics", [])
        records[key] = rec
    return records, at_once


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


def _run_pool(todo: list, records: dict, *, jobs: int, on_run, on_tick=None) -> bool:
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
            for key, cfg, state in todo:
                future = pool.submit(
                    run_one, cfg.model_dump(mode="json"), state == "overwrite", threads=threads,
                    resume=state == "resume", worker=True,
                )  # fmt: skip
                futures[future] = (key, cfg)
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in done:
                key, cfg = futures[future]
                records[key] = rec = _collect(future, cfg)
                if on_run is not None and rec["status"] in ("finished", "failed"):
                    on_run(key, rec)
            if on_tick is not None:
                on_tick()
            if _STOP:
                for future in [f for f in pending if f.cancel()]:
                    pending.discard(future)
                    key, cfg = futures[future]
                    records[key] = {"seed": cfg.seed, "dir": cfg.out_dir, "status": "not started"}
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
    which forwards it once); SIGINT / SIGTERM outside training note a stop (see :func:`run_one`)."""
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
