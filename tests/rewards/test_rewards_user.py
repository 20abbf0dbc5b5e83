"""User callables in worker processes: errors, invalid values, time-outs, crashes, recovery, leaks."""

import os
import signal
import sys
import textwrap
import threading
import time
import types

import pytest

from priorl.rewards import make_verifier

TIMEOUT_S = 1.0
SPEC = "verifier_helpers:score"


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper that may never come in a container counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture(scope="module")
def verifier():
    with make_verifier(SPEC, timeout_s=TIMEOUT_S, workers=2) as v:
        yield v


def test_defaults_for_user_callables(verifier):
    assert verifier.name == SPEC
    assert verifier.isolation == "process"
    assert verifier.timeout_s == TIMEOUT_S


def test_plain_scores(verifier):
    result = verifier.score_batch(["a", "b", "return:true", "return:false", "return:half", "return:int1"], ["a"] * 6)
    assert result.rewards == [1.0, 0.0, 1.0, 0.0, 0.5, 1.0]
    assert (result.errors, result.timeouts) == (0, 0)


@pytest.mark.parametrize(
    "completion",
    ["raise", "return:1.7", "return:nan", "return:inf", "return:-0.5", "return:str", "return:none", "sysexit"],
)
def test_errors_score_zero_and_are_counted(verifier, completion):
    result = verifier.score_batch([completion, "a"], ["a", "a"])
    assert result.rewards == [0.0, 1.0]
    assert (result.errors, result.timeouts) == (1, 0)


def test_first_error_of_a_kind_is_logged_once(caplog):
    with make_verifier(SPEC, isolation="none") as v, caplog.at_level("WARNING", logger="priorl.rewards"):
        v.score_batch(["return:nan", "return:nan", "raise"], ["a"] * 3)
        v.score_batch(["return:nan", "raise"], ["a"] * 2)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "InvalidReward" in messages[0] and "RuntimeError: boom" in messages[1]


@pytest.mark.parametrize("command", ["sleep", "busy"])
def test_soft_time_out_returns_promptly(verifier, command):
    restarts = verifier._runner.restarts
    start = time.perf_counter()
    result = verifier.score_batch([f"{command}:30", "a", "a"], ["a", "a", "a"])
    elapsed = time.perf_counter() - start
    assert result.rewards == [0.0, 1.0, 1.0]
    assert (result.errors, result.timeouts) == (0, 1)
    assert elapsed < TIMEOUT_S + 1.5
    assert verifier._runner.restarts == restarts  # the signal ended it: no worker was killed


@pytest.mark.parametrize("command", ["blocked-sleep", "swallow"])
def test_hard_time_out_kills_and_replaces_the_worker(command):
    with make_verifier(SPEC, timeout_s=TIMEOUT_S, workers=1) as v:
        v.score_batch(["a"], ["a"])  # wait for the worker
        (pid,) = v._runner.pids()
        start = time.perf_counter()
        result = v.score_batch([f"{command}:30", "a", "a"], ["a", "a", "a"])
        elapsed = time.perf_counter() - start
        assert result.rewards == [0.0, 1.0, 1.0]
        assert (result.errors, result.timeouts) == (0, 1)
        # time-out + grace, then the rest of the chunk waits for the replacement worker to start
        assert elapsed < TIMEOUT_S + 0.35 + 5.0
        assert not _alive(pid)
        assert v._runner.pids() != [pid]
        assert v.score_batch(["a"], ["a"]).rewards == [1.0]


def test_hard_time_out_also_kills_what_the_verifier_started(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    with make_verifier(SPEC, timeout_s=TIMEOUT_S, workers=1) as v:
        result = v.score_batch(["spawn-and-hang"], [str(pid_file)])
        assert result.timeouts == 1
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 2.0
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)


@pytest.mark.parametrize("command", ["exit", "segfault"])
def test_worker_death_is_an_error_and_the_pool_recovers(verifier, command):
    result = verifier.score_batch(["a", command, "b", "a"], ["a"] * 4)
    assert result.rewards == [1.0, 0.0, 0.0, 1.0]
    assert (result.errors, result.timeouts) == (1, 0)
    assert verifier.score_batch(["a"] * 8, ["a"] * 8).rewards == [1.0] * 8


def test_everything_at_once(verifier):
    completions = ["a", "raise", "sleep:30", "exit", "return:nan", "print", "a", "segfault", "return:true"] * 2
    result = verifier.score_batch(completions, ["a"] * len(completions))
    assert result.rewards == [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0] * 2
    assert (result.errors, result.timeouts) == (8, 2)


def test_an_interrupted_batch_leaves_nothing_behind():
    # Ctrl-C while workers are busy: their late results must not leak into the next batch.
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    with make_verifier(SPEC, workers=2) as v:
        v.score_batch(["a"], ["a"])
        previous = signal.signal(signal.SIGALRM, interrupt)
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.3)
            with pytest.raises(KeyboardInterrupt):
                v.score_batch(["sleep:0.6"] * 4, ["a"] * 4)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        result = v.score_batch(["b", "b", "a", "b"], ["a"] * 4)
        assert result.rewards == [0.0, 0.0, 1.0, 0.0]
        assert (result.errors, result.timeouts) == (0, 0)


def test_printing_verifier_does_not_corrupt_the_protocol(verifier):
    assert verifier.score_batch(["print"] * 20, ["a"] * 20).rewards == [1.0] * 20


def test_non_string_inputs_are_errors(verifier):
    result = verifier.score_batch(["a", None, threading.Lock(), "a"], ["a", "a", "a", 3])
    assert result.rewards == [1.0, 0.0, 0.0, 0.0]
    assert result.errors == 3


def test_odd_unicode_reaches_the_verifier(verifier):
    completions = ["\ud800", "\udfff\x00", "\U0010ffff", "\ud800" * 1000]
    result = verifier.score_batch(completions, completions)
    assert result.rewards == [1.0] * 4


def test_large_batch_of_large_completions(verifier):
    completions = ["x" * 100_000] * 64
    result = verifier.score_batch(completions, completions)
    assert result.rewards == [1.0] * 64


def test_kwargs_are_passed():
    with make_verifier("verifier_helpers:weighted", weight=0.25, workers=1) as v:
        assert v.score_batch(["a", "b"], ["a", "a"]).rewards == [0.25, 0.0]
    with make_verifier("verifier_helpers:weighted", weight=0.25, isolation="none") as v:
        assert v.score_batch(["a", "b"], ["a", "a"]).rewards == [0.25, 0.0]


def test_file_path_form(tmp_path, monkeypatch):
    path = tmp_path / "my_checker.py"
    path.write_text(
        textwrap.dedent(
            """
            import os

            def score(completion, answer, **kwargs):
                return completion.strip().lower() == answer.strip().lower()

            def pid(completion, answer):
                return 1.0 if os.getpid() == int(answer) else 0.0
            """
        )
    )
    assert str(tmp_path) not in sys.path  # loaded by path, not by module name
    monkeypatch.chdir(tmp_path)
    with make_verifier("my_checker.py:score", workers=1) as v:  # relative to the current directory
        assert v.score_batch([" YES ", "no"], ["yes", "yes"]).rewards == [1.0, 0.0]
    with make_verifier(f"{path}:pid", workers=1) as v:
        # It really runs in another process.
        assert v.score_batch(["x"], [str(os.getpid())]).rewards == [0.0]


def test_in_process_mode_counts_errors_and_soft_time_outs():
    with make_verifier(SPEC, timeout_s=TIMEOUT_S, isolation="none") as v:
        start = time.perf_counter()
        result = v.score_batch(["a", "raise", "return:1.7", "sleep:30", "return:true"], ["a"] * 5)
        elapsed = time.perf_counter() - start
    assert result.rewards == [1.0, 0.0, 0.0, 0.0, 1.0]
    assert (result.errors, result.timeouts) == (2, 1)
    assert elapsed < TIMEOUT_S + 1.0


def test_close_stops_the_workers():
    with make_verifier(SPEC, workers=2) as v:
        v.score_batch(["a"] * 4, ["a"] * 4)
        pids = v._runner.pids()
        assert len(pids) == 2 and all(_alive(p) for p in pids)
    assert not any(_alive(p) for p in pids)
    v.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        v.score_batch(["a"], ["a"])


def test_garbage_collected_verifier_stops_its_workers():
    v = make_verifier(SPEC, workers=1)
    v.score_batch(["a"], ["a"])
    pids = v._runner.pids()
    del v
    import gc

    gc.collect()
    assert not any(_alive(p) for p in pids)


def test_function_that_only_the_parent_can_import(monkeypatch):
    # Importable here (in sys.modules) but not from a fresh interpreter: the worker reports it.
    ghost = types.ModuleType("priorl_test_ghost_module")
    ghost.score = lambda completion, answer: 1.0
    monkeypatch.setitem(sys.modules, "priorl_test_ghost_module", ghost)
    with make_verifier("priorl_test_ghost_module:score", workers=1) as v:
        with pytest.raises(RuntimeError, match="failed to load in its worker process"):
            v.score_batch(["a"], ["a"])


def test_scoring_from_a_thread_keeps_time_limits(verifier):
    # Worker processes run the verifier on their own main thread, so the caller's thread does not matter.
    box = {}
    thread = threading.Thread(target=lambda: box.update(r=verifier.score_batch(["sleep:30", "a"], ["a", "a"])))
    thread.start()
    thread.join(TIMEOUT_S + 5.0)
    assert not thread.is_alive()
    assert box["r"].rewards == [0.0, 1.0] and box["r"].timeouts == 1
