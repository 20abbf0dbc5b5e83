"""The verifier the trainer holds: a scoring function, where it runs, and how failures are counted.

:func:`make_verifier` resolves a spec into a :class:`CallableVerifier`. A verifier that raises,
returns an invalid value, crashes its worker or runs out of time scores 0 for that completion and is
counted in the batch's :class:`~priorl.rewards.base.ScoreResult`; the first occurrence of each kind
of failure is logged once (``priorl.rewards`` logger), later ones only counted.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

from priorl.rewards.base import ScoreResult
from priorl.rewards.isolation import InProcessRunner, Outcome, WorkerPool
from priorl.rewards.loading import FunctionRef, Isolation, check_call_signature, load_function, parse_spec

__all__ = ["DEFAULT_TIMEOUT_S", "CallableVerifier", "default_workers", "make_verifier"]

logger = logging.getLogger("priorl.rewards")

DEFAULT_TIMEOUT_S = 5.0
_ISOLATIONS = ("process", "none")
_MAX_WARNED_KINDS = 64


def default_workers() -> int:
    """Worker processes per verifier by default: the usable CPU count, capped at 2.

    Scoring runs while the trainer waits for rewards, so it may use every core; more than two
    workers rarely pays at 128 completions a step (math-verify needs ~2-10 ms each) and each holds
    ~100 MB (sympy). Pass ``workers=`` for larger batches or slower verifiers.
    """
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    return max(1, min(2, n))


class CallableVerifier:
    """A scoring function ``f(completion, answer, **kwargs) -> float`` run in- or out-of-process.

    Implements :class:`~priorl.rewards.base.Verifier`; also a context manager that closes itself.
    ``score_batch`` is serialized by a lock, so one verifier may be shared between threads.

    Attributes:
        name: the spec it was made from (``"math"``, ``"mymod:score"``).
        timeout_s: time limit per completion.
        isolation: ``"process"`` (worker pool, hard time limits) or ``"none"`` (in this process).
        workers: worker processes (``None`` when ``isolation == "none"``).
    """

    def __init__(
        self,
        ref: FunctionRef,
        fn: Callable[..., Any],
        kwargs: Mapping[str, Any],
        *,
        timeout_s: float,
        isolation: Isolation,
        workers: int,
    ) -> None:
        self.name = ref.spec
        self.timeout_s = timeout_s
        self.isolation = isolation
        self.workers = workers if isolation == "process" else None
        self._runner: WorkerPool | InProcessRunner
        if isolation == "process":
            self._runner = WorkerPool(ref, kwargs, timeout_s=timeout_s, workers=workers)
        else:
            self._runner = InProcessRunner(fn, kwargs, timeout_s)
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        self._closed = False

    def score_batch(self, completions: Sequence[str], answers: Sequence[str]) -> ScoreResult:
        """Score ``completions[i]`` against ``answers[i]``; one reward in [0, 1] per completion.

        Never raises because of what a completion contains or what the verifier does with it.

        Raises:
            ValueError: if the two sequences differ in length.
            RuntimeError: if the verifier is closed, or its worker processes cannot start at all.
        """
        if len(completions) != len(answers):
            raise ValueError(f"{len(completions)} completions but {len(answers)} answers")
        start = time.perf_counter()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"verifier {self.name!r} is closed")
            outcomes = self._runner.run(list(completions), list(answers)) if completions else []
        self._log_failures(outcomes)
        return ScoreResult(
            rewards=[reward for _, reward, _ in outcomes],
            errors=sum(status == "error" for status, _, _ in outcomes),
            timeouts=sum(status == "timeout" for status, _, _ in outcomes),
            seconds=time.perf_counter() - start,
        )

    def _log_failures(self, outcomes: list[Outcome]) -> None:
        for status, _, message in outcomes:
            if status == "ok":
                continue
            kind = "timeout" if status == "timeout" else message.split(":", 1)[0]
            if kind in self._warned or len(self._warned) >= _MAX_WARNED_KINDS:
                continue
            self._warned.add(kind)
            logger.warning(
                "verifier %r: %s (scored 0; further %s are only counted)",
                self.name,
                message,
                "timeouts" if status == "timeout" else f"{kind} errors",
            )

    def close(self) -> None:
        """Stop the worker processes, if any. Idempotent."""
        with self._lock:
            self._closed = True
            self._runner.close()

    def __enter__(self) -> CallableVerifier:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        where = f"process, workers={self.workers}" if self.isolation == "process" else "in-process"
        return f"CallableVerifier({self.name!r}, timeout_s={self.timeout_s:g}, {where})"


def make_verifier(
    spec: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    isolation: Isolation | None = None,
    workers: int | None = None,
    **kwargs: Any,
) -> CallableVerifier:
    """Build a verifier from a spec.

    Args:
        spec: ``"exact"``, ``"numeric"``, ``"math"``, ``"module.path:function"`` or
            ``"path/to/file.py:function"``. A user function is called as
            ``function(completion, answer, **kwargs)`` and must return a bool or a finite number in
            [0, 1]; anything else counts as an error (reward 0).
        timeout_s: time limit per completion, in seconds (``math.inf``: none). Past it the completion
            scores 0 and counts as a timeout.
        isolation: ``"process"`` runs the function in worker processes, where a hung or crashing
            call is killed and the worker replaced; ``"none"`` runs it in this process (faster;
            soft time limits only, and only on the main thread). Default: ``"none"`` for ``exact``
            and ``numeric`` (bounded time by construction), ``"process"`` for ``math`` and user
            functions.
        workers: worker processes for ``isolation="process"``; default :func:`default_workers`.
        **kwargs: passed to the function on every call (``rel_tol``/``abs_tol`` for ``numeric``;
            ``float_rounding``, ``numeric_precision``, ``strict`` for ``math``). Must be JSON-serializable
            under ``isolation="process"``.

    The function is imported here as well as in each worker, so a bad spec fails now.

    Raises:
        ValueError: naming the spec, for an unknown name, a module that does not import, a missing
            or non-callable attribute, a signature that does not take ``(completion, answer,
            **kwargs)``, or a bad option value.
    """
    ref = parse_spec(spec)
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or not timeout_s > 0:
        raise ValueError(f"verifier {ref.spec!r}: timeout_s must be a positive number, got {timeout_s!r}")
    isolation = ref.isolation if isolation is None else isolation
    if isolation not in _ISOLATIONS:
        raise ValueError(f"verifier {ref.spec!r}: isolation must be one of {_ISOLATIONS}, got {isolation!r}")
    if workers is None:
        workers = default_workers()
    elif isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"verifier {ref.spec!r}: workers must be an integer >= 1, got {workers!r}")
    fn = load_function(ref)
    check_call_signature(fn, kwargs, ref.spec)
    if isolation == "process":
        try:
            json.dumps(kwargs)  # they travel to the worker processes as JSON
        except (TypeError, ValueError) as e:
            raise ValueError(f"verifier {ref.spec!r}: keyword arguments must be JSON-serializable: {e}") from e
    else:
        warmup = getattr(fn, "warmup", None)
        if callable(warmup):
            warmup()
    return CallableVerifier(ref, fn, kwargs, timeout_s=float(timeout_s), isolation=isolation, workers=workers)
