"""make_verifier: spec resolution, defaults, and the ValueError for every kind of bad spec."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from priorl.rewards import BUILTIN_VERIFIERS, Verifier, extract_last_number, make_verifier


@pytest.mark.parametrize(("spec", "isolation"), [("exact", "none"), ("numeric", "none"), (" numeric ", "none")])
def test_builtins_resolve_in_process(spec, isolation):
    with make_verifier(spec) as v:
        assert isinstance(v, Verifier)
        assert v.name == spec.strip() and v.isolation == isolation and v.timeout_s == 5.0


def test_builtin_table_names_three_verifiers():
    assert set(BUILTIN_VERIFIERS) == {"exact", "numeric", "math"}
    assert BUILTIN_VERIFIERS["math"].isolation == "process"


def test_numeric_can_run_in_workers_too():
    with make_verifier("numeric", isolation="process", workers=1) as v:
        assert v.score_batch(["x = 1,234", "7"], ["1234", "8"]).rewards == [1.0, 0.0]


@pytest.mark.parametrize(
    ("spec", "kwargs", "fragment"),
    [
        ("", {}, "non-empty"),
        ("nope", {}, "unknown verifier"),
        ("Math", {}, "unknown verifier"),
        ("no_such_module_priorl_xyz:score", {}, "not importable"),
        ("verifier_helpers:missing", {}, "no attribute 'missing'"),
        ("verifier_helpers:NOT_CALLABLE", {}, "not callable"),
        ("verifier_helpers:one_arg", {}, "cannot be called"),
        ("verifier_helpers:weighted", {"bogus": 1}, "cannot be called"),
        ("verifier_helpers:", {}, "not a function name"),
        ("bad module:score", {}, "neither an importable module"),
        ("/no/such/dir/checker.py:score", {}, "does not exist"),
        ("math", {"bogus": 1}, "cannot be called"),
        ("exact", {"timeout_s": 0}, "timeout_s"),
        ("exact", {"timeout_s": -1.0}, "timeout_s"),
        ("exact", {"isolation": "thread"}, "isolation"),
        ("verifier_helpers:score", {"workers": 0}, "workers"),
        ("verifier_helpers:weighted", {"weight": lambda: 1}, "JSON-serializable"),
    ],
)
def test_bad_specs_raise_one_line_value_errors_naming_the_spec(spec, kwargs, fragment):
    with pytest.raises(ValueError) as info:
        make_verifier(spec, **kwargs)
    message = str(info.value)
    assert fragment in message
    assert repr(spec.strip()) in message or (spec == "" and "''" in message)
    assert "\n" not in message


def test_file_that_fails_to_import(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("def score(c, a):\n    return 1.0\nraise ImportError('no\\nway')\n")
    with pytest.raises(ValueError, match="ImportError: no way") as info:
        make_verifier(f"{path}:score")
    assert f"{path}:score" in str(info.value)
    path.write_text("def score(c, a) return\n")
    with pytest.raises(ValueError, match="SyntaxError"):
        make_verifier(f"{path}:score")


def test_module_whose_own_import_fails(tmp_path, monkeypatch):
    (tmp_path / "needs_missing_dep.py").write_text("import priorl_missing_dep_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match="raised ModuleNotFoundError.*priorl_missing_dep_xyz"):
        make_verifier("needs_missing_dep:score")


@given(st.integers(min_value=-(10**30), max_value=10**30), st.booleans(), st.sampled_from(["", ".", " apples."]))
def test_last_number_round_trips_integers(n, commas, suffix):
    text = f"so the answer is {n:,}{suffix}" if commas else f"so the answer is {n}{suffix}"
    assert extract_last_number(text) == n


@given(st.decimals(min_value=-(10**9), max_value=10**9, places=4, allow_nan=False, allow_infinity=False))
def test_last_number_round_trips_decimals(d):
    assert extract_last_number(f"x = {d}") == d
