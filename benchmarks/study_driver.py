"""What the multi-study drivers of benchmarks/ share (replay_search.py, visits_map.py): run one `priorl compare`
study to its end across sessions, and their ``run`` / ``plan`` / ``report`` command line."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path


def compare(args: list[str]) -> int:
    """``priorl compare ARGS`` in a child process, echoed first; its exit status."""
    exe = shutil.which("priorl") or str(Path(sys.executable).with_name("priorl"))
    print("$ priorl compare " + " ".join(args), flush=True)
    return subprocess.call([exe, "compare", *args])


def run_study(where: Path, args: list[str], jobs: int) -> int:
    """The study in ``where``: nothing when it has finished (its summary.json), ``--resume`` when it has started
    (its study.json), else a new one from ``args`` (the compare arguments without --out and --jobs)."""
    if (where / "summary.json").exists():
        print(f"{where}: finished")
        return 0
    if (where / "study.json").exists():
        return compare(["--resume", str(where), "--jobs", str(jobs)])
    return compare([*args, "--out", str(where), "--jobs", str(jobs)])


def cli(
    doc: str,
    default_out: str,
    run: Callable[[Path, int], int],
    plan: Callable[[Path], None],
    report: Callable[[Path], None],
    helps: tuple[str, str, str],
    argv: list[str] | None = None,
) -> int:
    """A driver's command line: ``run [--out --jobs]``, ``plan [--out]``, ``report OUT``; ``helps`` is each one's
    help line, in that order."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help=helps[0])
    p_run.add_argument("--out", type=Path, default=Path(default_out))
    p_run.add_argument("--jobs", type=int, default=2)
    p_plan = sub.add_parser("plan", help=helps[1])
    p_plan.add_argument("--out", type=Path, default=Path(default_out))
    p_report = sub.add_parser("report", help=helps[2])
    p_report.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args.out, args.jobs)
    if args.command == "plan":
        plan(args.out)
    else:
        report(args.out)
    return 0
