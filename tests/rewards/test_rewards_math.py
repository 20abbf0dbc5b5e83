"""math: math-verify equivalences, pathological completions under the time-out, batch timing."""

import signal
import time

import pytest

from priorl.rewards import make_verifier, math_score

TIMEOUT_S = 1.0

EQUIVALENCES = [
    ("\\frac{1}{2}", "0.5", 1.0),
    ("0.5", "\\frac{1}{2}", 1.0),
    ("$x=2$", "2", 1.0),
    ("The answer is $\\boxed{\\sqrt{2}}$.", "\\sqrt{2}", 1.0),
    ("So we get \\boxed{2\\sqrt{3}}", "2\\sqrt{3}", 1.0),
    ("\\boxed{2}", "2\\sqrt{3}", 0.0),
    ("$\\boxed{\\dfrac{3}{4}}$", "0.75", 1.0),
    ("I think the answer is 1,234", "1234", 1.0),
    ("the answer is 13", "12", 0.0),
    ("no answer at all", "12", 0.0),
]


@pytest.fixture(scope="module")
def math_verifier():
    with make_verifier("math", timeout_s=TIMEOUT_S, workers=2) as verifier:
        yield verifier


@pytest.mark.parametrize(("completion", "answer", "reward"), EQUIVALENCES)
def test_math_score_in_this_process(completion, answer, reward):
    assert math_score(completion, answer) == reward


def test_math_in_workers_matches(math_verifier):
    assert math_verifier.isolation == "process" and math_verifier.workers == 2
    completions, answers, expected = zip(*EQUIVALENCES, strict=True)
    result = math_verifier.score_batch(completions, answers)
    assert result.rewards == list(expected)
    assert (result.errors, result.timeouts) == (0, 0)


def test_unparsable_gold_is_an_error(math_verifier):
    result = math_verifier.score_batch(["2", "2"], ["", "\\text{}"])
    assert result.rewards == [0.0, 0.0]
    assert result.errors == 2


PATHOLOGICAL = [
    "9^9^9^9^9",
    "$9^{9^{9^{9^9}}}$",
    "\\boxed{10^{10^{10}}}",
    "The answer is " + "(" * 5000 + "1" + ")" * 5000,
    "x " * 50_000,  # 100 kB
    "1 + " * 25_000 + "2",  # 100 kB of expression
    "\ud800",
    "\ud800\udfff \\boxed{\ud800}",
    "\x00\x01\ufffe",
]


def test_pathological_completions_stay_within_the_time_out(math_verifier):
    completions = [*PATHOLOGICAL, "\\boxed{2}"]
    start = time.perf_counter()
    result = math_verifier.score_batch(completions, ["2"] * len(completions))
    elapsed = time.perf_counter() - start
    print(f"math: {len(completions)} pathological completions in {elapsed:.2f} s, {result}")
    assert len(result.rewards) == len(completions)
    assert all(0.0 <= r <= 1.0 for r in result.rewards)
    assert result.rewards[-1] == 1.0
    assert result.timeouts >= 1  # 9^9^9^9^9 cannot finish
    # Every slow item is cut at timeout_s (+ grace, + a worker restart after a kill), two workers.
    hard = TIMEOUT_S + 0.35 + 1.5
    assert elapsed < len(completions) * hard / 2 + 5.0
    # The pool is still usable afterwards.
    assert math_verifier.score_batch(["\\boxed{3}"], ["3"]).rewards == [1.0]


def test_math_128_completions_timing(math_verifier, record_property):
    completions = [
        f"Let me think step by step. First, {i} + {i} = {2 * i}. So the answer is $\\boxed{{\\frac{{{2 * i}}}{{2}}}}$."
        for i in range(128)
    ]
    answers = [str(i if i % 4 else i + 1) for i in range(128)]
    start = time.perf_counter()
    result = math_verifier.score_batch(completions, answers)
    elapsed = time.perf_counter() - start
    print(f"math: 128 completions in {elapsed:.3f} s (2 workers)")
    record_property("math_128_seconds", elapsed)
    assert result.rewards == [0.0 if i % 4 == 0 else 1.0 for i in range(128)]
    assert (result.errors, result.timeouts) == (0, 0)
    assert elapsed < 30


def test_in_process_math_soft_time_out_and_signal_restored():
    assert signal.getsignal(signal.SIGALRM) == signal.SIG_DFL
    with make_verifier("math", timeout_s=TIMEOUT_S, isolation="none") as verifier:
        assert verifier.workers is None
        start = time.perf_counter()
        result = verifier.score_batch(["9^9^9^9^9", "\\frac{1}{2}", "\ud800"], ["2", "0.5", "2"])
        elapsed = time.perf_counter() - start
    assert result.rewards == [0.0, 1.0, 0.0]
    assert (result.errors, result.timeouts) == (0, 1)
    assert elapsed < TIMEOUT_S + 2.0
    assert signal.getsignal(signal.SIGALRM) == signal.SIG_DFL
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_math_options_are_passed_to_math_verify():
    with make_verifier("math", isolation="none", float_rounding=2) as verifier:
        assert verifier.score_batch(["0.333"], ["1/3"]).rewards == [1.0]
