"""exact / numeric: correctness tables, giant and odd inputs, the reward-value rule."""

import math
import time
from fractions import Fraction

import pytest

from priorl.rewards import (
    InvalidReward,
    ScoreResult,
    Verifier,
    exact_score,
    extract_last_number,
    make_verifier,
    numeric_score,
    to_reward,
)


@pytest.mark.parametrize(
    ("completion", "answer", "reward"),
    [
        ("42", "42", 1.0),
        ("  42 \n", "42", 1.0),
        ("42", " 42\t", 1.0),
        ("42.", "42", 0.0),
        ("Yes", "yes", 0.0),  # no case folding
        ("42.0", "42", 0.0),  # no numeric reading
        ("", "", 1.0),
        ("\ud800", "\ud800", 1.0),
        ("\ud800", "x", 0.0),
    ],
)
def test_exact(completion, answer, reward):
    assert exact_score(completion, answer) == reward


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("The answer is 42.", Fraction(42)),
        ("x = -3", Fraction(-3)),
        ("(-3)", Fraction(-3)),
        ("\u22127", Fraction(-7)),  # typographic minus
        ("5-3", Fraction(3)),  # binary minus, not a sign
        ("1,234", Fraction(1234)),
        ("total: 1,234,567.5", Fraction(2469135, 2)),
        ("3.14", Fraction(314, 100)),
        (".5", Fraction(1, 2)),
        ("1.5e-3", Fraction(3, 2000)),
        ("3/4", Fraction(3, 4)),
        ("-3 / 4", Fraction(-3, 4)),
        ("$\\frac{3}{4}$", Fraction(3, 4)),
        ("-\\dfrac{1}{2}", Fraction(-1, 2)),
        ("#### 72", Fraction(72)),
        ("$\\boxed{12}$", Fraction(12)),
        ("first 7, then 8", Fraction(8)),
        ("50%", Fraction(50)),
        ("no number", None),
        ("", None),
        ("2/0", None),
        ("1e999999", None),  # exponent too large to evaluate exactly
        ("\u0663", None),  # Arabic-Indic digit: ASCII digits only
        ("\ud800 5 \udfff", Fraction(5)),
    ],
)
def test_extract_last_number(text, value):
    assert extract_last_number(text) == value


@pytest.mark.parametrize(
    ("completion", "answer", "reward"),
    [
        ("The answer is 42.", "42", 1.0),
        ("42", "42.0", 1.0),
        ("so 1,234 apples", "1234", 1.0),
        ("x = -3", "-3", 1.0),
        ("x = -3", "3", 0.0),
        ("3/4", "0.75", 1.0),
        ("0.75", "3/4", 1.0),
        ("\\frac{3}{4}", "0.75", 1.0),
        ("0.30000000000000004", "0.3", 1.0),  # within rel 1e-6
        ("1000002", "1000000", 0.0),  # outside rel 1e-6
        ("1e-10", "0", 1.0),  # within abs 1e-9
        ("1e-8", "0", 0.0),
        ("first 7, then 8", "7", 0.0),  # no cue: the last number counts
        ("no number here", "5", 0.0),
        ("", "5", 0.0),
        ("#### 72", "72", 1.0),
        ("answer: 10**400", "10", 1.0),  # a cue: the first number after it
        ("10**400", "400", 1.0),  # no cue: the last number
        ("9" * 5000, "9", 0.0),  # an absurd token is unparsable, not slow
    ],
)
def test_numeric(completion, answer, reward):
    assert numeric_score(completion, answer) == reward


def test_numeric_tolerances_are_options():
    assert numeric_score("1.1", "1", rel_tol=0.2) == 1.0
    assert numeric_score("1.1", "1") == 0.0


def test_numeric_gold_without_number_raises():
    with pytest.raises(ValueError, match="gold"):
        numeric_score("5", "five")


@pytest.mark.parametrize(
    "completion",
    ["1 " * 1_000_000 + "7", "9" * 1_000_000 + " 7", "(" * 500_000 + "7", "7 " + "x" * 2_000_000],
)
def test_numeric_is_fast_on_giant_inputs(completion):
    start = time.perf_counter()
    numeric_score(completion, "7")
    assert time.perf_counter() - start < 1.0


def test_numeric_giant_input_reads_the_tail():
    assert numeric_score("1 " * 1_000_000 + "7", "7") == 1.0
    # The number before the tail window is not searched: documented limit.
    assert numeric_score("7 " + "x" * 2_000_000, "7") == 0.0


@pytest.mark.parametrize(
    ("value", "reward"),
    [(True, 1.0), (False, 0.0), (1, 1.0), (0, 0.0), (0.25, 0.25), (-0.0, 0.0), (Fraction(1, 2), 0.5)],
)
def test_to_reward_accepts(value, reward):
    assert to_reward(value) == reward
    assert math.copysign(1.0, to_reward(value)) == 1.0


@pytest.mark.parametrize("value", [1.7, -0.5, float("nan"), float("inf"), "0.5", None, 1j, object(), [1.0]])
def test_to_reward_refuses(value):
    with pytest.raises(InvalidReward):
        to_reward(value)


def test_in_process_builtins_batch():
    with make_verifier("numeric") as verifier:
        assert isinstance(verifier, Verifier)
        assert verifier.isolation == "none" and verifier.name == "numeric"
        result = verifier.score_batch(["so 1,234.", "12", "\ud800", None, "1"], ["1234", "13", "1", "1", "one"])
    assert isinstance(result, ScoreResult)
    # None as a completion raises inside the verifier; a gold without a number raises too: both errors.
    assert result.rewards == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert (result.errors, result.timeouts) == (2, 0)
    assert result.metrics()["errors"] == 2.0


def test_empty_batch_and_length_mismatch():
    with make_verifier("exact") as verifier:
        assert verifier.score_batch([], []).rewards == []
        with pytest.raises(ValueError, match="2 completions but 1 answers"):
            verifier.score_batch(["a", "b"], ["a"])


def test_closed_verifier_refuses_to_score():
    verifier = make_verifier("exact")
    verifier.close()
    verifier.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        verifier.score_batch(["a"], ["a"])


def test_numeric_128_completions_timing(record_property):
    completions = [f"Step by step... so the total is {i * 1.5:,} apples." for i in range(128)]
    answers = [str(i * 1.5) for i in range(128)]
    with make_verifier("numeric") as verifier:
        result = verifier.score_batch(completions, answers)
    print(f"numeric: 128 completions in {result.seconds * 1000:.2f} ms")
    record_property("numeric_128_seconds", result.seconds)
    assert result.rewards == [1.0] * 128
    assert result.seconds < 30
