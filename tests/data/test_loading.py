"""Loading and validating problem files: every format, every error case with its message."""

from __future__ import annotations

import csv
import json
import re
import sys
import warnings

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from priorl.data import DatasetError, DuplicateProblemsWarning, load_problems, read_problems
from priorl.types import Problem

ROWS = [
    {"prompt": "1+1=", "answer": "2", "level": 1},
    {"prompt": "12+30=", "answer": 42, "level": 2},
    {"prompt": "half of 3?", "answer": 1.5},
]


def E(path) -> str:
    """A path as a regex that matches it literally (for ``pytest.raises(match=...)``)."""
    return re.escape(str(path))


def write_jsonl(path, rows, extra_lines=()):
    lines = [json.dumps(r) for r in rows] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n")
    return path


def write_csv(path, rows, fields=("prompt", "answer", "level")):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fields))
        writer.writeheader()
        for r in rows:
            writer.writerow({k: r.get(k, "") for k in fields})
    return path


def write_parquet(path, rows):
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def expected(name):
    return [
        Problem(0, "1+1=", "2", 1, f"{name}:{1}"),
        Problem(1, "12+30=", "42", 2, f"{name}:{2}"),
        Problem(2, "half of 3?", "1.5", None, f"{name}:{3}"),
    ]


# ---- each format loads -----------------------------------------------------------------------------------


def test_jsonl_loads_with_ids_sources_and_number_answers(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", ROWS)
    assert load_problems(str(path)) == expected(str(path))


def test_jsonl_skips_blank_lines_and_counts_lines_through_them(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('\n{"prompt": "a", "answer": "b"}\n\n{"prompt": "c", "answer": "d"}\n')
    problems = load_problems(str(path))
    assert [p.source for p in problems] == [f"{path}:2", f"{path}:4"]


def test_csv_loads_with_header_counted_as_line_1(tmp_path):
    path = write_csv(tmp_path / "p.csv", ROWS)
    problems = load_problems(str(path))
    # CSV has no types: answers are the cell text, the empty level cell means no level.
    assert [(p.prompt, p.answer, p.level) for p in problems] == [
        ("1+1=", "2", 1),
        ("12+30=", "42", 2),
        ("half of 3?", "1.5", None),
    ]
    assert [p.source for p in problems] == [f"{path}:2", f"{path}:3", f"{path}:4"]


def test_parquet_loads_with_row_index_sources(tmp_path):
    path = write_parquet(tmp_path / "p.parquet", [dict(r, answer=str(r["answer"])) for r in ROWS])
    problems = load_problems(str(path))
    assert [(p.id, p.prompt, p.answer, p.level) for p in problems] == [
        (0, "1+1=", "2", 1),
        (1, "12+30=", "42", 2),
        (2, "half of 3?", "1.5", None),
    ]
    assert [p.source for p in problems] == [f"{path}:0", f"{path}:1", f"{path}:2"]


def test_parquet_float_level_column_from_pandas_is_accepted(tmp_path):
    table = pa.table({"prompt": ["a", "b"], "answer": ["1", "2"], "level": [3.0, float("nan")]})
    path = tmp_path / "p.parquet"
    pq.write_table(table, path)
    assert [p.level for p in load_problems(str(path))] == [3, None]


def test_custom_keys_and_ignored_levels(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"question": "q", "solution": 7, "level": 4, "x": [1]}])
    problems = load_problems(str(path), prompt_key="question", answer_key="solution", level_key=None)
    assert problems == [Problem(0, "q", "7", None, f"{path}:1")]


def test_builtin_specs():
    train = load_problems("builtin:arithmetic")
    test = load_problems("builtin:arithmetic-test")
    assert len(train) == 4000 and len(test) == 500
    assert train[0].source == "builtin:arithmetic:0"
    with pytest.raises(DatasetError, match="unknown builtin dataset 'builtin:nope'"):
        load_problems("builtin:nope")


# ---- duplicates ------------------------------------------------------------------------------------------


def dup_rows():
    return [
        {"prompt": "a", "answer": "1"},
        {"prompt": "b", "answer": "2"},
        {"prompt": "a", "answer": "1"},
        {"prompt": "a", "answer": "9"},  # same prompt, other answer: not a duplicate
    ]


def test_duplicates_dropped_keeping_first_with_one_warning(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", dup_rows())
    with pytest.warns(DuplicateProblemsWarning, match=rf"dropped 1 duplicate.*{E(path)}:3 repeats {E(path)}:1"):
        problems = load_problems(str(path))
    assert [(p.id, p.prompt, p.answer) for p in problems] == [(0, "a", "1"), (1, "b", "2"), (2, "a", "9")]
    result = read_problems(str(path))
    assert (result.rows, result.duplicates, len(result.problems)) == (4, 1, 3)


def test_duplicates_error_and_keep(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", dup_rows())
    with pytest.raises(DatasetError, match=rf"{E(path)} line 3: duplicate problem .*as {E(path)}:1"):
        load_problems(str(path), duplicates="error")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_problems(str(path), duplicates="keep")) == 4


def test_no_warning_without_duplicates(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", ROWS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_problems(str(path))


# ---- every error names the file, the place, the field and the value --------------------------------------


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ('{"prompt": "x", "answer": ', r"line 2: malformed JSON \(Expecting value at column 27\)"),
        ("[1, 2]", r"line 2: expected a JSON object, got list: \[1, 2\]"),
        ('{"answer": "3"}', r"line 2: missing field 'prompt' \(fields present: 'answer'\)"),
        ('{"prompt": "x"}', r"line 2: missing field 'answer'"),
        ('{"prompt": null, "answer": "3"}', r"line 2: missing field 'prompt'"),
        ('{"prompt": 12, "answer": "3"}', r"line 2: field 'prompt' must be a string, got int: 12"),
        ('{"prompt": "  ", "answer": "3"}', r"line 2: field 'prompt' is empty: '  '"),
        ('{"prompt": "x", "answer": [3]}', r"line 2: field 'answer' must be a string or a finite number, got list"),
        ('{"prompt": "x", "answer": true}', r"line 2: field 'answer' must be a string .*got bool: True"),
        ('{"prompt": "x", "answer": ""}', r"line 2: field 'answer' is empty"),
        ('{"prompt": "x", "answer": NaN}', r"line 2: field 'answer' must be a string or a finite number"),
        ('{"prompt": "x", "answer": "3", "level": "hard"}', r"line 2: field 'level' must be an integer, got str"),
        ('{"prompt": "x", "answer": "3", "level": 1.5}', r"line 2: field 'level' must be an integer, got float"),
    ],
)
def test_jsonl_row_errors(tmp_path, bad_line, message):
    path = write_jsonl(tmp_path / "bad.jsonl", ROWS[:1], extra_lines=[bad_line])
    with pytest.raises(DatasetError, match=rf"^{E(path)} {message}"):
        load_problems(str(path))


def test_jsonl_not_utf8(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"prompt": "a", "answer": "1"}\n{"prompt": "\xff", "answer": "1"}\n')
    with pytest.raises(DatasetError, match=rf"^{E(path)} line 2: not UTF-8"):
        load_problems(str(path))


def test_dataset_error_is_a_value_error():
    assert issubclass(DatasetError, ValueError)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_empty_files(tmp_path, suffix):
    path = tmp_path / f"empty{suffix}"
    path.write_text("")
    with pytest.raises(DatasetError, match=rf"^{E(path)}: empty dataset"):
        load_problems(str(path))


def test_blank_jsonl_and_header_only_csv_are_empty(tmp_path):
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n  \n")
    header = write_csv(tmp_path / "header.csv", [])
    for path in (blank, header):
        with pytest.raises(DatasetError, match="empty dataset"):
            load_problems(str(path))


def test_empty_parquet(tmp_path):
    path = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"prompt": pa.array([], pa.string()), "answer": pa.array([], pa.string())}), path)
    with pytest.raises(DatasetError, match=rf"^{E(path)}: empty dataset"):
        load_problems(str(path))


def test_missing_file_and_unknown_extension(tmp_path):
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(DatasetError, match=rf"^{E(missing)}: no such file"):
        load_problems(str(missing))
    odd = tmp_path / "data.txt"
    odd.write_text("x")
    with pytest.raises(DatasetError, match=rf"^{E(odd)}: unknown dataset format '.txt'.*\.jsonl, \.parquet, \.csv"):
        load_problems(str(odd))
    with pytest.raises(DatasetError, match="no extension"):
        load_problems(str(tmp_path / "data"))


def test_csv_errors_name_the_file_line(tmp_path):
    path = write_csv(tmp_path / "c.csv", [{"prompt": "a", "answer": "1"}], fields=("prompt", "level"))
    with pytest.raises(DatasetError, match=rf"^{E(path)} line 1: missing field 'answer' in the CSV header"):
        load_problems(str(path))

    path = tmp_path / "short.csv"
    path.write_text("prompt,answer,level\na,1,1\nb\n")
    with pytest.raises(DatasetError, match=rf"^{E(path)} line 3: missing field 'answer' \(fields present: 'prompt'\)"):
        load_problems(str(path))

    path = tmp_path / "level.csv"
    path.write_text("prompt,answer,level\na,1,1\nb,2,two\n")
    with pytest.raises(DatasetError, match=rf"^{E(path)} line 3: field 'level' must be an integer, got 'two'"):
        load_problems(str(path))

    path = tmp_path / "empty_answer.csv"
    path.write_text('prompt,answer\n"multi\nline",1\nb,\n')
    # The quoted prompt spans lines 2-3, so the bad row is on line 4.
    with pytest.raises(DatasetError, match=rf"^{E(path)} line 4: field 'answer' is empty"):
        load_problems(str(path))


def test_parquet_errors_name_the_row(tmp_path):
    path = write_parquet(tmp_path / "p.parquet", [{"prompt": "a", "answer": "1"}, {"prompt": None, "answer": "2"}])
    with pytest.raises(DatasetError, match=rf"^{E(path)} row 1: missing field 'prompt'"):
        load_problems(str(path))

    path = write_parquet(tmp_path / "n.parquet", [{"prompt": 5, "answer": "1"}])
    with pytest.raises(DatasetError, match=rf"^{E(path)} row 0: field 'prompt' must be a string, got int: 5"):
        load_problems(str(path))

    path = write_parquet(tmp_path / "c.parquet", [{"question": "a", "answer": "1"}])
    with pytest.raises(DatasetError, match=rf"^{E(path)}: missing field 'prompt' in the Parquet schema"):
        load_problems(str(path))

    path = tmp_path / "garbage.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DatasetError, match=rf"^{E(path)}: not a readable Parquet file"):
        load_problems(str(path))


def test_hf_without_datasets_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` raise ImportError
    with pytest.raises(DatasetError, match=r"hf:someone/set:test: .*pip install 'priorl\[datasets\]'"):
        load_problems("hf:someone/set:test")


def test_bad_duplicates_policy(tmp_path):
    with pytest.raises(ValueError, match="duplicates must be"):
        load_problems("builtin:arithmetic", duplicates="maybe")
