"""Load and validate problem sets: JSONL, Parquet, CSV, the builtin task family, Hugging Face datasets.

Everything is validated while loading, before any training starts, and the first problem found stops the
load with one :class:`DatasetError` that names the file, the place in it, the field and the value:

    train.jsonl line 7: field 'answer' must be a string or a number, got list: [1, 2]

Places are 1-based file lines for JSONL and CSV (for CSV the header is line 1) and 0-based row indices
for Parquet and Hugging Face datasets. Each problem's ``source`` is ``"<file>:<place>"``.

Fields: ``prompt`` must be a non-empty string; ``answer`` a non-empty string or a number (converted
with ``str()``, since files often store integer answers as JSON numbers); ``level`` is optional, an
integer or null/absent/empty. Other fields are ignored.

Duplicates (same prompt *and* same answer) are dropped by default, keeping the first occurrence, and
reported with one :class:`DuplicateProblemsWarning` giving the count and an example. A duplicate would
otherwise be two problem ids sharing one problem, which skews a prioritized sampler's statistics.
``duplicates="error"`` makes them fatal, ``duplicates="keep"`` keeps them silently. The same prompt
with *different* answers is not a duplicate and is kept.
"""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from priorl.types import Problem

__all__ = [
    "BUILTIN_SPECS",
    "DatasetError",
    "DuplicateProblemsWarning",
    "LoadResult",
    "load_problems",
    "read_problems",
]

BUILTIN_SPECS = (
    "builtin:arithmetic",
    "builtin:arithmetic-test",
    "builtin:arithmetic-validation",
    "builtin:arithmetic-instruct",
    "builtin:arithmetic-instruct-test",
    "builtin:arithmetic-instruct-validation",
    "builtin:rules",
    "builtin:rules-test",
    "builtin:rules-validation",
)
_EXTENSIONS = (".jsonl", ".parquet", ".csv")
_MISSING = object()

Duplicates = Literal["drop", "error", "keep"]


class DatasetError(ValueError):
    """A dataset that cannot be loaded; the message names the file, the place, the field and the value."""


class DuplicateProblemsWarning(UserWarning):
    """Some problems repeated an earlier one (same prompt and answer) and were dropped."""


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What :func:`read_problems` found: the problems plus counts for a loader's report."""

    problems: list[Problem]
    spec: str
    rows: int  # rows read from the source, duplicates included
    duplicates: int = 0  # rows dropped (or, with duplicates="keep", kept) as repeats of an earlier row
    duplicate_examples: list[tuple[str, str]] = field(default_factory=list)  # (repeat, first), up to 5


def load_problems(
    spec: str,
    *,
    prompt_key: str = "prompt",
    answer_key: str = "answer",
    level_key: str | None = "level",
    duplicates: Duplicates = "drop",
) -> list[Problem]:
    """Load and validate a problem set; ``Problem.id`` is the index in the returned list.

    ``spec`` is a path to a ``.jsonl``, ``.parquet`` or ``.csv`` file, ``builtin:arithmetic`` (train) or
    ``builtin:arithmetic-test`` (held out), their chat-model phrasing ``builtin:arithmetic-instruct[-test]``,
    or ``hf:NAME[:SPLIT]`` (needs ``pip install 'priorl[datasets]'``; SPLIT defaults to ``train``).
    ``prompt_key``/``answer_key``/``level_key`` name the fields (ignored for builtins); ``level_key=None``
    ignores levels. Raises :class:`DatasetError` on the first invalid row; warns
    :class:`DuplicateProblemsWarning` when duplicates were dropped.
    O(rows).
    """
    result = read_problems(
        spec, prompt_key=prompt_key, answer_key=answer_key, level_key=level_key, duplicates=duplicates
    )
    if result.duplicates and duplicates == "drop":
        repeat, first = result.duplicate_examples[0]
        warnings.warn(
            f"{spec}: dropped {result.duplicates} duplicate problem(s) (same prompt and answer), keeping "
            f"the first occurrence; e.g. {repeat} repeats {first}",
            DuplicateProblemsWarning,
            stacklevel=2,
        )
    return result.problems


def read_problems(
    spec: str,
    *,
    prompt_key: str = "prompt",
    answer_key: str = "answer",
    level_key: str | None = "level",
    duplicates: Duplicates = "drop",
) -> LoadResult:
    """Like :func:`load_problems` but returns a :class:`LoadResult` with counts and never warns."""
    if duplicates not in ("drop", "error", "keep"):
        raise ValueError(f"duplicates must be 'drop', 'error' or 'keep', got {duplicates!r}")
    if spec.startswith("builtin:"):
        return _read_builtin(spec)
    keys = _Keys(prompt_key, answer_key, level_key)
    if spec.startswith("hf:"):
        name, rows = _hf_rows(spec, keys)
    else:
        name, rows = _file_rows(spec, keys)
    return _collect(spec, name, rows, keys, duplicates)


# ---- sources: each yields (place, row) where place is e.g. "line 7" and row maps field -> value --------


@dataclass(frozen=True, slots=True)
class _Keys:
    prompt: str
    answer: str
    level: str | None


def _read_builtin(spec: str) -> LoadResult:
    """``builtin:NAME`` or ``builtin:NAME:OPTIONS`` (options only for the rules family)."""
    from priorl.data.arithmetic import arithmetic_problems
    from priorl.data.rules import parse_options, rules_problems

    name, _, options = spec.partition(":")[2].partition(":")
    base = f"builtin:{name}"
    if base not in BUILTIN_SPECS:
        raise DatasetError(f"unknown builtin dataset {spec!r}; known: {', '.join(BUILTIN_SPECS)}")
    if base.startswith("builtin:arithmetic"):
        problems = arithmetic_problems(_split_of(base), style="instruct" if "-instruct" in base else "expression")
        if options:  # n=N: the first N problems (levels interleave, so every level keeps its share)
            key, sep, value = options.partition("=")
            if key != "n" or not sep or not value.isdigit() or not 1 <= int(value) <= len(problems):
                raise DatasetError(
                    f"{spec}: {base} takes one option, n=N (the first N of its {len(problems)} problems, levels "
                    f"interleaved), got {options!r}"
                )
            problems = [replace(p, id=i) for i, p in enumerate(problems[: int(value)])]
    else:
        try:
            problems = rules_problems(_split_of(base), **parse_options(options))
        except ValueError as exc:
            raise DatasetError(f"{spec}: {exc}") from None
    return LoadResult(problems, spec, len(problems))


def _split_of(base: str) -> str:
    """``builtin:rules-test`` -> ``test``, ``builtin:rules-validation`` -> ``validation``, else ``train``."""
    return "test" if base.endswith("-test") else "validation" if base.endswith("-validation") else "train"


def _file_rows(spec: str, keys: _Keys) -> tuple[str, Iterator[tuple[str, int, Mapping[str, Any]]]]:
    path = Path(spec)
    suffix = path.suffix.lower()
    if suffix not in _EXTENSIONS:
        raise DatasetError(
            f"{spec}: unknown dataset format {path.suffix or '(no extension)'!r}; expected a file ending in "
            f"{', '.join(_EXTENSIONS)}, or {', '.join(BUILTIN_SPECS)}, hf:NAME[:SPLIT]"
        )
    if not path.exists():
        raise DatasetError(f"{spec}: no such file")
    if not path.is_file():
        raise DatasetError(f"{spec}: not a file")
    if suffix == ".jsonl":
        return spec, _jsonl_rows(spec, path)
    if suffix == ".csv":
        return spec, _csv_rows(spec, path, keys)
    return spec, _parquet_rows(spec, path, keys)


def _jsonl_rows(name: str, path: Path) -> Iterator[tuple[str, int, Mapping[str, Any]]]:
    # Read bytes and split ourselves so that a decoding error can name its line too.
    data = path.read_bytes()
    loads = json.loads
    for lineno, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue  # blank lines (a trailing newline, a separator) carry no row
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DatasetError(f"{name} line {lineno}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        try:
            row = loads(text)
        except json.JSONDecodeError as exc:
            raise DatasetError(
                f"{name} line {lineno}: malformed JSON ({exc.msg} at column {exc.colno}): {_show(text)}"
            ) from None
        if not isinstance(row, dict):
            raise DatasetError(f"{name} line {lineno}: expected a JSON object, got {_type(row)}: {_show(row)}")
        yield f"line {lineno}", lineno, row


def _csv_rows(name: str, path: Path, keys: _Keys) -> Iterator[tuple[str, int, Mapping[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: tolerate the BOM spreadsheets write
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return  # empty file: the caller reports "no problems"
    except csv.Error as exc:
        raise DatasetError(f"{name} line 1: malformed CSV header ({exc})") from None
    for required in (keys.prompt, keys.answer):
        if required not in header:
            raise DatasetError(
                f"{name} line 1: missing field {required!r} in the CSV header (columns: {_show(header)})"
                f"{_key_hint(keys, required, header)}"
            )
    columns = {key: header.index(key) for key in (keys.prompt, keys.answer, keys.level) if key in header}
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DatasetError(f"{name} line {reader.line_num}: malformed CSV ({exc})") from None
        if not cells:
            continue  # blank line
        lineno = reader.line_num  # the file line where this record ends (multi-line quoted fields)
        row: dict[str, Any] = {}
        for key, col in columns.items():
            if col < len(cells):
                # CSV has no null: an empty level cell means "no level"; an empty prompt/answer is kept
                # as "" and rejected by the validator as empty.
                if key == keys.level and cells[col] == "":
                    continue
                row[key] = cells[col]
        if keys.level is not None and keys.level in row:
            row[keys.level] = _csv_int(name, lineno, keys.level, row[keys.level])
        yield f"line {lineno}", lineno, row


def _csv_int(name: str, lineno: int, key: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise DatasetError(f"{name} line {lineno}: field {key!r} must be an integer, got {_show(value)}") from None


def _parquet_rows(name: str, path: Path, keys: _Keys) -> Iterator[tuple[str, int, Mapping[str, Any]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as exc:
        raise DatasetError(f"{name}: not a readable Parquet file ({exc})") from None
    for required in (keys.prompt, keys.answer):
        if required not in schema.names:
            raise DatasetError(
                f"{name}: missing field {required!r} in the Parquet schema (columns: {_show(schema.names)})"
                f"{_key_hint(keys, required, schema.names)}"
            )
    wanted = [k for k in (keys.prompt, keys.answer, keys.level) if k is not None and k in schema.names]
    try:
        table = pq.read_table(path, columns=wanted)
    except (pa.ArrowException, OSError) as exc:
        raise DatasetError(f"{name}: not a readable Parquet file ({exc})") from None
    return _column_rows({k: table.column(k).to_pylist() for k in wanted}, table.num_rows)


def _column_rows(columns: dict[str, list[Any]], n: int) -> Iterator[tuple[str, int, Mapping[str, Any]]]:
    # Column-wise sources: a null cell is reported as a missing field, like an absent JSON key.
    for i in range(n):
        yield f"row {i}", i, {k: v for k, col in columns.items() if (v := col[i]) is not None}


def _hf_rows(spec: str, keys: _Keys) -> tuple[str, Iterator[tuple[str, int, Mapping[str, Any]]]]:
    rest = spec[len("hf:") :]
    name, _, split = rest.partition(":")
    split = split or "train"
    if not name:
        raise DatasetError(f"{spec}: expected hf:NAME[:SPLIT], e.g. hf:openai/gsm8k:test")
    try:
        import datasets
    except ImportError:
        raise DatasetError(
            f"{spec}: loading Hugging Face datasets needs the 'datasets' package: pip install 'priorl[datasets]'"
        ) from None
    try:
        ds = datasets.load_dataset(name, split=split)
    except Exception as exc:  # datasets raises many types (network, missing config, missing split)
        raise DatasetError(f"{spec}: could not load the dataset ({type(exc).__name__}: {exc})") from None
    for required in (keys.prompt, keys.answer):
        if required not in ds.column_names:
            raise DatasetError(
                f"{spec}: missing field {required!r} in the dataset (columns: {_show(ds.column_names)})"
                f"{_key_hint(keys, required, ds.column_names)}"
            )
    wanted = [k for k in (keys.prompt, keys.answer, keys.level) if k is not None and k in ds.column_names]
    return f"hf:{name}:{split}", _column_rows({k: list(ds[k]) for k in wanted}, len(ds))


# ---- validation ------------------------------------------------------------------------------------------


def _collect(
    spec: str,
    name: str,
    rows: Iterable[tuple[str, int, Mapping[str, Any]]],
    keys: _Keys,
    duplicates: Duplicates,
) -> LoadResult:
    problems: list[Problem] = []
    first_seen: dict[tuple[str, str], str] = {}  # (prompt, answer) -> source of its first occurrence
    n_rows = n_dup = 0
    examples: list[tuple[str, str]] = []
    for place, pos, row in rows:
        n_rows += 1
        where = f"{name} {place}"
        prompt = row.get(keys.prompt, _MISSING)
        if prompt is _MISSING or prompt is None:
            raise DatasetError(
                f"{where}: missing field {keys.prompt!r}{_fields_hint(row)}{_key_hint(keys, keys.prompt, row)}"
            )
        if not isinstance(prompt, str):
            raise DatasetError(f"{where}: field {keys.prompt!r} must be a string, got {_type(prompt)}: {_show(prompt)}")
        if not prompt.strip():
            raise DatasetError(f"{where}: field {keys.prompt!r} is empty: {_show(prompt)}")
        answer = _answer(where, keys, row.get(keys.answer, _MISSING), row)
        level = None if keys.level is None else _level(where, keys.level, row.get(keys.level))
        source = f"{name}:{pos}"
        key = (prompt, answer)
        first = first_seen.get(key)
        if first is not None:
            n_dup += 1
            if duplicates == "error":
                raise DatasetError(f"{where}: duplicate problem (same prompt and answer as {first}): {_show(prompt)}")
            if len(examples) < 5:
                examples.append((source, first))
            if duplicates == "drop":
                continue
        else:
            first_seen[key] = source
        problems.append(Problem(len(problems), prompt, answer, level, source))
    if not problems:
        raise DatasetError(f"{name}: empty dataset (no problems found)")
    return LoadResult(problems, spec, n_rows, n_dup, examples)


def _answer(where: str, keys: _Keys, value: Any, row: Mapping[str, Any]) -> str:
    key = keys.answer
    if value is _MISSING or value is None:
        raise DatasetError(f"{where}: missing field {key!r}{_fields_hint(row)}{_key_hint(keys, key, row)}")
    if isinstance(value, str):
        if not value.strip():
            raise DatasetError(f"{where}: field {key!r} is empty: {_show(value)}")
        return value
    # bool is an int subclass, but true/false is almost certainly a mistake for an answer.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(value)
    raise DatasetError(
        f"{where}: field {key!r} must be a string or a finite number, got {_type(value)}: {_show(value)}"
    )


def _level(where: str, key: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None  # pandas writes a missing int as NaN in a float column
        if value.is_integer():
            return int(value)
    raise DatasetError(f"{where}: field {key!r} must be an integer, got {_type(value)}: {_show(value)}")


# Field names datasets commonly use for the prompt and the answer, most likely first.
_LIKELY = {
    "prompt": ("question", "problem", "prompt", "query", "input", "instruction", "text"),
    "answer": ("answer", "final_answer", "solution", "target", "output", "label"),
}


def _key_hint(keys: _Keys, missing: str, present) -> str:
    """When the prompt or answer field is missing: which ``data.*_key`` to set, naming the likeliest field."""
    role = "prompt" if missing == keys.prompt else "answer"
    names = [str(n) for n in present]
    taken = {keys.prompt, keys.answer, keys.level}
    likely = next((n for n in _LIKELY[role] if n in names and n not in taken), None)
    if likely is not None:
        return f"; if the {role}s are in {likely!r}, set data.{role}_key: {likely} (--set data.{role}_key={likely})"
    if names:
        return f"; set data.{role}_key to the field that holds the {role}s"
    return ""


def _fields_hint(row: Mapping[str, Any]) -> str:
    if not row:
        return " (row has no fields)"
    names = list(row)
    shown = ", ".join(map(repr, names[:8])) + (", ..." if len(names) > 8 else "")
    return f" (fields present: {shown})"


def _type(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _show(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
