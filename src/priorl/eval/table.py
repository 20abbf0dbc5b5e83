"""Held-out accuracy as tables, for ``priorl train`` (before -> after) and ``priorl eval`` (one model or each run
of a study): one place, one layout. Results are :func:`priorl.eval.evaluate_held_out`'s (eval.jsonl's records)."""

from __future__ import annotations

from rich.table import Table

NO_LEVEL = "None"  # by_level's key for problems without a level (str(None))


def _levels(ref: dict) -> list[str]:
    """The per-level rows to show: none when no problem has a level (the "all" row says everything)."""
    levels = list(ref["by_level"])
    return [] if levels == [NO_LEVEL] else levels


def _pct(b: float | None, a: float | None) -> str:
    if b is not None and a is not None:
        return f"{b:.1%} -> {a:.1%} ({(a - b) * 100:+.1f})"
    return f"{(a if a is not None else b):.1%}"


def held_out_table(before: dict | None, after: dict | None, *, title: str) -> Table | None:
    """Rows by level (when the problems have levels; a level-less problem among them is "no level") and "all";
    columns pass@1 (greedy) and, when sampled, avg@k and pass@k; a cell is ``before -> after (change)`` when both
    are given, else the one result. None when neither is."""
    ref = after or before
    if ref is None:
        return None
    kinds = [("pass@1 (greedy)", lambda r: r, "accuracy")]
    if "sampled" in ref:
        k = ref["sampled"]["samples"]
        kinds += [(f"avg@{k} (sampled)", lambda r: r["sampled"], "accuracy"),
                  (f"pass@{k} (sampled)", lambda r: r["sampled"], "pass_at_k")]  # fmt: skip
    table = Table(title=title)
    table.add_column("level")
    table.add_column("n", justify="right")
    for name, _, _ in kinds:
        table.add_column(name, justify="right")

    def cells(level: str | None) -> list[str]:
        def get(r: dict | None, pick, field: str) -> float | None:
            if r is None:
                return None
            part = pick(r)
            return part[field] if level is None else part["by_level"].get(level, {}).get(field)

        return [_pct(get(before, pick, f), get(after, pick, f)) for _, pick, f in kinds]

    for level in _levels(ref):
        label = "no level" if level == NO_LEVEL else level
        table.add_row(label, str(ref["by_level"][level]["n"]), *cells(level))
    table.add_row("all", str(ref["num_problems"]), *cells(None), style="bold")
    return table


def runs_table(rows: list[dict], *, title: str) -> Table:
    """One row per run (``{"run", "step", **result}`` or ``{"run", "error"}``): n, pass@1 and, when sampled,
    avg@k and pass@k, over all its held-out problems."""
    sampled = next((r["sampled"]["samples"] for r in rows if "sampled" in r), None)
    table = Table(title=title)
    for col in ("run", "step", "n", "pass@1 (greedy)"):
        table.add_column(col, justify="left" if col == "run" else "right")
    if sampled is not None:
        table.add_column(f"avg@{sampled} (sampled)", justify="right")
        table.add_column(f"pass@{sampled} (sampled)", justify="right")
    for r in rows:
        if "error" in r:
            table.add_row(r["run"], "-", "-", r["error"], *(["", ""] if sampled is not None else []))
            continue
        row = [r["run"], str(r["step"]), str(r["num_problems"]), f"{r['accuracy']:.1%}"]
        if sampled is not None:
            s = r.get("sampled")
            row += [f"{s['accuracy']:.1%}", f"{s['pass_at_k']:.1%}"] if s else ["-", "-"]
        table.add_row(*row)
    return table
