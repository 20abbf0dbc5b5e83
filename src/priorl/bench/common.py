"""Shared pieces of the speed benchmarks: a timer, a progress bar and the two output forms."""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


def time_steps(step: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``step()`` in milliseconds over ``repeats`` calls, after ``warmup`` calls."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


@contextmanager
def progress_bar(total: int, description: str, enabled: bool = True):
    """A progress bar on stderr (``--json`` output on stdout stays clean); yields ``advance(label)``."""
    if not enabled:
        yield lambda label=None: None
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[label]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with progress:
        task = progress.add_task(description, total=total, label="")

        def advance(label: str | None = None) -> None:
            progress.update(task, advance=1, label=label or "")

        yield advance


def parse_sizes(text: str) -> list[int]:
    """Parse ``"1e3,1e4,100000"`` into ``[1000, 10000, 100000]``, with a clear error on bad input."""
    sizes = []
    for part in text.split(","):
        part = part.strip()
        try:
            value = float(part)
        except ValueError:
            raise ValueError(f"size {part!r} is not a number (expected e.g. 1e3,1e4,1e5)") from None
        if value < 1 or value != int(value):
            raise ValueError(f"size {part!r} must be a positive integer")
        sizes.append(int(value))
    return sizes


def print_json(payload: dict) -> None:
    """A report as indented JSON on stdout (the ``--json`` form of every bench command)."""
    json.dump(payload, sys.stdout, indent=2)
    sys.stdout.write("\n")


def emit(
    results: Sequence[dict],
    *,
    as_json: bool,
    title: str,
    size_key: str,
    baseline: str,
    candidate: str,
    extra: dict | None = None,
) -> None:
    """Print benchmark rows as ``{"results": [...]}`` JSON, or as a table with speed-up ratios."""
    if as_json:
        payload = {"results": list(results)}
        if extra:
            payload.update(extra)
        print_json(payload)
        return
    console = Console()
    impls = list(dict.fromkeys(r["impl"] for r in results))
    sizes = list(dict.fromkeys(r[size_key] for r in results))
    by = {(r["impl"], r[size_key]): r["step_ms"] for r in results}
    table = Table(title=title)
    table.add_column(size_key, justify="right")
    for impl in impls:
        table.add_column(f"{impl} ms/step", justify="right")
    table.add_column(f"{baseline} / {candidate}", justify="right")
    for n in sizes:
        row = [f"{n:,}"] + [f"{by[(i, n)]:.2f}" if (i, n) in by else "-" for i in impls]
        if (baseline, n) in by and (candidate, n) in by:
            row.append(f"{by[(baseline, n)] / by[(candidate, n)]:.1f}x")
        else:
            row.append("-")
        table.add_row(*row)
    console.print(table)
    if extra:
        for key, value in extra.items():
            console.print(f"{key}: {value}")


def target_ratios(results: Sequence[dict], *, size_key: str, baseline: str, candidate: str) -> dict:
    """The two figures the speed targets are stated in, at the largest size measured.

    ``{baseline}_over_{candidate}_at_max``: how many times faster the candidate is there;
    ``{candidate}_time_ratio_{max}_over_{small}``: how its time grew from ``small`` (10^4 when measured,
    else the smallest size) to the largest size.
    """
    by = {(r["impl"], r[size_key]): r["step_ms"] for r in results}
    sizes = sorted({r[size_key] for r in results})
    out: dict[str, float] = {}
    if not sizes:
        return out
    hi = sizes[-1]
    if (baseline, hi) in by and (candidate, hi) in by:
        out[f"{baseline}_over_{candidate}_at_max"] = round(by[(baseline, hi)] / by[(candidate, hi)], 2)
    small = 10_000 if (candidate, 10_000) in by else sizes[0]
    if small != hi and (candidate, small) in by and (candidate, hi) in by:
        out[f"{candidate}_time_ratio_{hi}_over_{small}"] = round(by[(candidate, hi)] / by[(candidate, small)], 2)
    return out
