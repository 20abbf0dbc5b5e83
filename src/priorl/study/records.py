"""Reading a study's records: run directories (their logs, summary and state) and ``OUT/study.json``.

The one place that reads what runs and studies leave on disk, for the harness (pool, runner, record, report) and
for the benchmark scripts that read committed studies. Writing ``study.json`` and the resume checks live in
:mod:`priorl.study.record`.
"""

from __future__ import annotations

import json
from pathlib import Path

STUDY = "study.json"  # what a study was started with and what produced it; written first, updated at the end


def read_json(path: Path) -> dict | None:
    """The JSON object in ``path``, or None when it is missing, unreadable or not an object."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_jsonl(path: Path) -> list[dict]:
    """The rows of a JSON-lines log (``[]`` when the file is missing)."""
    path = Path(path)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def read_run(run_dir: Path) -> dict:
    """A finished run's evaluations and metrics, and its training time over all its sessions (its summary's)."""
    run_dir = Path(run_dir)
    out = {"evals": read_jsonl(run_dir / "eval.jsonl"), "metrics": read_jsonl(run_dir / "metrics.jsonl")}
    summary = read_json(run_dir / "summary.json")
    if summary is not None and summary.get("wall_seconds") is not None:
        out["wall_seconds"] = float(summary["wall_seconds"])
    return out


def run_state(run_dir: Path) -> str:
    """finished (its summary says so), resume (started: it has its config and run id or a checkpoint),
    overwrite (only traces of a run that never started, e.g. error.txt) or fresh (nothing there)."""
    from priorl.grpo.checkpoint import list_checkpoints
    from priorl.grpo.rundir import run_contents

    summary = read_json(run_dir / "summary.json")
    if summary is not None and summary.get("status") == "finished":
        return "finished"
    if (run_dir / "config.yaml").is_file() and ((run_dir / "run.json").is_file() or list_checkpoints(run_dir)):
        return "resume"
    return "overwrite" if run_contents(run_dir) else "fresh"


def load_study(out: str | Path) -> dict | None:
    """``OUT/study.json``, or None when there is none. Raises ValueError for one that cannot be read."""
    path = Path(out) / STUDY
    if not path.exists():
        return None
    data = read_json(path)
    if data is None or not isinstance(data.get("inputs"), dict):
        raise ValueError(f"{path} is not a priorl compare study record (unreadable, or no 'inputs')")
    return data
