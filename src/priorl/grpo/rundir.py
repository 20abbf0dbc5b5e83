"""The run directory: what priorl writes there, the run's identity, and when a directory may be reused.

A run directory belongs to one run. ``run.json`` holds its id (written once, when the run starts), and
every checkpoint carries the same id, so a resume can tell that the checkpoints it loads are this run's.
A fresh run refuses a directory that already holds a run (any of the files below) unless told to
overwrite it; overwriting removes only the files and folders priorl writes, never anything else a user
keeps there.
"""

from __future__ import annotations

import json
import secrets
import shutil
import time
from pathlib import Path

from priorl.statefile import write_atomic

RUN_INFO = "run.json"
# Everything a run writes into its directory (compare adds error.txt for a failed run).
RUN_FILES = (
    RUN_INFO, "config.yaml", "metrics.jsonl", "batches.jsonl", "eval.jsonl", "samples.jsonl", "summary.json",
    "progress.png", "error.txt",
)  # fmt: skip
RUN_DIRS = ("checkpoints", "tb", "wandb")
# The per-step logs: one JSON line per step (or evaluation), each with its "step".
STEP_LOGS = ("metrics.jsonl", "batches.jsonl", "eval.jsonl", "samples.jsonl")


class RunDirectoryError(ValueError):
    """A run directory cannot be used as asked (it holds another run, or mixes two); the message says why."""


def new_run_id() -> str:
    """A run id: the UTC start time and 8 random hex digits, e.g. ``20260301-142233-9f2c41ab``."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(4)


def run_contents(run_dir: str | Path) -> list[str]:
    """The names of priorl's files and folders present in ``run_dir`` (folders end with ``/``)."""
    root = Path(run_dir)
    if not root.is_dir():
        return []
    found = [name for name in RUN_FILES if (root / name).is_file()]
    return found + [f"{name}/" for name in RUN_DIRS if (root / name).is_dir() and any((root / name).iterdir())]


def check_fresh(run_dir: str | Path, *, overwrite: bool) -> list[str]:
    """Check that a new run may start in ``run_dir``; returns what ``--overwrite`` will remove.

    Raises:
        RunDirectoryError: the directory holds a run and ``overwrite`` is false, or it is not a directory.
    """
    root = Path(run_dir)
    if root.exists() and not root.is_dir():
        raise RunDirectoryError(f"cannot write the run directory {root}: it is a file")
    used = run_contents(root)
    if used and not overwrite:
        raise RunDirectoryError(
            f"{root} already holds a run ({', '.join(used)}): continue it with --resume {root}, replace it "
            "with --overwrite, or choose another --out"
        )
    return used


def clear_run(run_dir: str | Path) -> list[str]:
    """Remove the files and folders a run wrote in ``run_dir`` (and nothing else); returns their names."""
    root = Path(run_dir)
    removed = run_contents(root)
    for name in RUN_FILES:
        (root / name).unlink(missing_ok=True)
    for name in RUN_DIRS:
        if (root / name).is_dir():
            shutil.rmtree(root / name)
    return removed


def read_run_info(run_dir: str | Path) -> dict | None:
    """``run.json`` of a run directory, or None when there is none (a run from before run ids existed)."""
    path = Path(run_dir) / RUN_INFO
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RunDirectoryError(f"{path} is not valid JSON (line {exc.lineno}): {exc.msg}") from None
    if not isinstance(info, dict) or not isinstance(info.get("run_id"), str):
        raise RunDirectoryError(f"{path} has no run_id")
    return info


def write_run_info(run_dir: str | Path, info: dict) -> None:
    write_atomic(Path(run_dir) / RUN_INFO, (json.dumps(info, indent=1) + "\n").encode())


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def open_run_dir(run_dir: str | Path, config_yaml: str, *, clear: bool) -> list[str]:
    """Create ``run_dir``, remove the previous run's files when ``clear`` (``--overwrite``), and write the run's
    ``config.yaml``; returns what was removed. Raises ``ValueError`` naming the directory when it cannot be written."""
    root = Path(run_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
        cleared = clear_run(root) if clear else []
        (root / "config.yaml").write_text(config_yaml)
    except OSError as exc:
        raise ValueError(f"cannot write the run directory {root}: {exc.strerror or exc}") from None
    return cleared


def start_run(run_dir: str | Path, version: str) -> str:
    """Give a new run its id in ``run.json``; returns the id."""
    run_id = new_run_id()
    write_run_info(run_dir, {"run_id": run_id, "created": _now(), "priorl_version": version, "resumed": []})
    return run_id


def resumed_run_info(run_dir: str | Path, checkpoint: Path | None, checkpoint_run_id: str | None) -> dict:
    """``run.json`` of the run being resumed, checked against its newest checkpoint's run id.

    Raises :class:`RunDirectoryError` when there is nothing to resume, or when the checkpoint belongs to another
    run than ``run.json`` (the directory mixes two runs). A run written before run ids takes its checkpoint's id.
    """
    info = read_run_info(run_dir)
    if info is None and checkpoint is None:
        raise RunDirectoryError(f"{run_dir} has no complete checkpoint to resume from")
    if info is not None and checkpoint_run_id not in (None, info["run_id"]):
        raise RunDirectoryError(
            f"{checkpoint} belongs to run {checkpoint_run_id}, but {Path(run_dir) / RUN_INFO} is run "
            f"{info['run_id']}: the directory mixes two runs and cannot be resumed; start a new run with "
            "--overwrite or another --out"
        )
    if info is None:
        info = {"run_id": checkpoint_run_id or new_run_id(), "created": None, "priorl_version": None}
    return info


def record_resume(run_dir: str | Path, info: dict, step: int) -> None:
    """Note in ``run.json`` that the run resumed at ``step``, and cut the step logs back to that step (lines
    written after the checkpoint belong to steps that will run again)."""
    from priorl.grpo.sinks import truncate_jsonl

    info.setdefault("resumed", []).append({"at": _now(), "step": step})
    write_run_info(run_dir, info)
    for name in STEP_LOGS:
        truncate_jsonl(Path(run_dir) / name, step)
