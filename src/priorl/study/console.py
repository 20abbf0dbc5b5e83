"""What ``priorl compare`` shows while a study runs and when it ends.

On a terminal a rich progress bar; in a log (no terminal) one line per event and a progress line at least every
minute. A run's own warnings (its summary.json's) are printed once per study, not once a run, and not at all when
the plan already said them. At the end: the result table, the grid-edge and instability flags, where the files are.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from priorl.study.plan import Plan
from priorl.study.records import read_json


class StudyConsole:
    """The progress of one study on ``console`` (warnings to ``err``); use as a context manager around
    :func:`priorl.study.run_study` and pass its ``on_*`` methods as the callbacks."""

    def __init__(self, console: Console, err: Console, plan: Plan) -> None:
        self.console, self.err, self.plan = console, err, plan
        self.live = console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]{task.fields[run]}"), BarColumn(), TextColumn("{task.completed:,.0f}/{task.total:,}"),
            TimeElapsedColumn(), console=console, disable=not self.live,
        )  # fmt: skip
        self.done, self.phase = 0, ""
        self.t0 = self.last_line = time.monotonic()
        self.warned: set[str] = set()
        self.planned = {why for reasons in plan.inactive.values() for why in reasons}  # said in the plan already
        self.task = None

    def __enter__(self) -> StudyConsole:
        self.progress.__enter__()
        self.task = self.progress.add_task("compare", total=self.plan.n_runs, run="runs")
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def stop(self) -> None:
        """Stop the bar (before an error message)."""
        self.progress.stop()

    def line(self, text: str) -> None:
        """Without a terminal (a log), one line per event, stamped with the minutes since the start."""
        if not self.live:
            print(f"[compare {(time.monotonic() - self.t0) / 60:5.1f} min] {text}", flush=True)
            self.last_line = time.monotonic()

    def on_phase(self, name: str, runs: list) -> None:
        self.phase = name
        self.line(f"{name}: {len(runs)} runs")

    def on_run(self, run, record: dict) -> None:
        self.done += 1
        self.progress.update(self.task, completed=self.done, run=f"{run.phase} {run.preset} seed {run.seed}")
        final = record["evals"][-1]["accuracy"] if record.get("evals") else None
        how = ("reused" if record.get("reused") else record["status"]) + (
            f", final accuracy {final:.1%}" if final is not None else ""
        )
        cell = "".join(f" {k}={v}" for k, v in run.cell.items())
        self.line(f"run {self.done}/{self.plan.n_runs} done: {run.phase} {run.preset}{cell} seed {run.seed} ({how})")
        if record.get("reused"):
            return
        for text in run_warnings(record.get("dir")):  # the run's own warnings, each text once per study
            if text not in self.warned and text not in self.planned:
                self.warned.add(text)
                self.err.print(
                    f"warning ({run.preset}{cell} seed {run.seed}; not repeated for later runs): {text}",
                    highlight=False, soft_wrap=True,
                )  # fmt: skip

    def heartbeat(self, detail: str = "") -> None:
        if not self.live and time.monotonic() - self.last_line >= 60:
            self.line(f"{self.phase}: {self.done}/{self.plan.n_runs} runs done{detail}")

    def on_step(self, key, step: int, metrics: dict) -> None:
        self.heartbeat(
            f"; {key[1]} seed {key[3]} at {metrics['rollouts_generated']:,}/{self.plan.budget:,} completions"
        )

    def print_result(self, summary: dict, out: Path) -> None:
        """The table, the flags, where the files are, what did not act and what failed."""
        console = self.console
        print_table(console, summary)
        for name, e in summary["presets"].items():
            for flag in e["edge"]:
                console.print(f"[yellow]edge of the grid[/] ({name}): {flag}", highlight=False, soft_wrap=True)
            for flag in e.get("instability", []):
                console.print(f"[yellow]next to instability[/] ({name}): {flag}", highlight=False, soft_wrap=True)
        console.print(f"summary: {Path(out, 'summary.json')}  report: {Path(out, 'report.md')}", soft_wrap=True)
        plot = Path(out, "accuracy_vs_rollouts.png")
        if plot.exists():
            console.print(f"plot of test accuracy against completions: {plot}", soft_wrap=True)
        for preset, reasons in summary.get("inactive", {}).items():
            for why in reasons:
                console.print(f"[yellow]did not act[/] ({preset}): {why}", highlight=False, soft_wrap=True)
        failed = sum(e["seeds_failed"] for e in summary["presets"].values())
        if failed:
            console.print(f"[yellow]{failed} run(s) failed; see error.txt in their directories[/]")


def run_warnings(run_dir: str | None) -> list[str]:
    """The warnings a finished run gave (its summary.json's ``warnings``); none when it has no readable summary."""
    summary = read_json(Path(run_dir) / "summary.json") if run_dir else None
    warnings = (summary or {}).get("warnings", [])
    return [str(w) for w in warnings] if isinstance(warnings, list) else []


def print_table(console: Console, summary: dict) -> None:
    """The study as a table: chosen settings, completions to the 90% target, ratio to grpo, final accuracy."""
    from rich.table import Table

    from priorl.study.report import fmt_count, fmt_interval, fmt_ratio, target_label

    key = summary["primary"]["target"]
    if key:
        what = "target: " + target_label(
            key, summary["targets"][key]["accuracy"], (summary.get("study") or {}).get("target_kind", "gain")
        )
    else:
        what = f"targets {summary['targets_from']}"  # e.g. "n/a: grpo did not improve"
    table = Table(title=f"equal budget of {summary['budget']:,} completions; {what}")
    show_chosen = any(e["chosen"] for e in summary["presets"].values())  # untuned: nothing chosen, no column
    columns = ("preset", "chosen", "completions to target [95%]", "ratio to grpo [95%]", "final accuracy")
    for col in columns if show_chosen else [c for c in columns if c != "chosen"]:
        table.add_column(col, justify="left" if col in ("preset", "chosen") else "right")
    for preset, e in summary["presets"].items():
        chosen = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in e["chosen"].items()) or "-"
        t = e["completions_to_target"].get(key) if key else None
        reach = "n/a" if t is None else f"{fmt_count(t['mean'])} {fmt_interval(t['ci95'], fmt_count)}"
        r = (e["ratio_to_grpo"].get(key) or {}).get("completions") if key else None
        ratio = "-" if preset == summary["baseline"] or r is None else fmt_ratio(r)
        final = "failed" if e["final_accuracy_mean"] is None else f"{e['final_accuracy_mean']:.1%}"
        table.add_row(preset, *([chosen] if show_chosen else []), reach, ratio, f"{final} (n={e['seeds_ok']})")
    console.print(table)
