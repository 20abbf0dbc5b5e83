"""Calling a scoring function under a time limit, in this process or in a pool of worker processes.

Two layers of time limit:

- **Soft** (:class:`SoftTimer`): ``SIGALRM`` via ``setitimer``, armed around each call, raising
  :class:`SoftTimeout` (a ``BaseException``, so ``except Exception`` in a verifier or in math-verify
  does not swallow it). Interrupts Python code (sympy's loops, ``time.sleep``) at no cost to the
  process, but only on the main thread, and not inside a single long C call (a huge integer power).
- **Hard** (:class:`WorkerPool`): each worker scores its chunk on its own main thread under the
  soft timer and reports after every item; if no report comes within ``timeout_s`` plus a grace
  period, the parent kills the worker, counts that item as a timeout, starts a replacement and
  hands the rest of the chunk on. A worker that dies (``os._exit``, a segfault, the OOM killer) is
  handled the same way, its current item counted as an error.

Workers are fresh interpreters started with ``subprocess`` (``python -c``), not ``multiprocessing``:
no ``__main__`` re-import (a training script without an ``if __name__ == "__main__"`` guard is
fine), nothing inherited from a process holding torch threads or CUDA, and a private pipe for the
protocol (a verifier that prints cannot corrupt it). Messages are length-prefixed JSON (no pickle).
POSIX only.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import selectors
import signal
import struct
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any, Literal

from priorl.rewards.base import to_reward
from priorl.rewards.loading import FunctionRef

__all__ = [
    "InProcessRunner",
    "Outcome",
    "SoftTimeout",
    "SoftTimer",
    "WorkerPool",
    "call_scored",
    "describe_exception",
]

Status = Literal["ok", "error", "timeout"]
Outcome = tuple[Status, float, str]  # (status, reward: 0.0 unless "ok", message: "" when "ok")

_MESSAGE_CHARS = 300  # error messages are truncated: an exception may embed a 100 kB completion
_HEADER = struct.Struct("!Q")


class SoftTimeout(BaseException):
    """Raised inside a verifier call by :class:`SoftTimer` when its time is up."""


class SoftTimer:
    """A per-call deadline from ``SIGALRM``; a no-op where signals cannot be used.

    :meth:`install` takes over ``SIGALRM`` only on the main thread, only if no interval timer is
    running and no one else has a Python handler for it (never clobber the host's alarm).
    :meth:`arm` / :meth:`disarm` bracket one call. The handler raises only while armed, so an alarm
    that lands just after a call returned is ignored instead of escaping somewhere else.
    """

    def __init__(self) -> None:
        self.active = False
        self._armed = False
        self._previous: Any = None

    def install(self) -> bool:
        """Take over ``SIGALRM`` if it is safe to; returns whether soft time limits are active."""
        if self.active:
            return True
        if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
            return False
        if signal.getitimer(signal.ITIMER_REAL)[0] > 0:
            return False
        if signal.getsignal(signal.SIGALRM) not in (signal.SIG_DFL, signal.SIG_IGN, None):
            return False
        self._previous = signal.signal(signal.SIGALRM, self._on_alarm)
        self.active = True
        return True

    def uninstall(self) -> None:
        """Give ``SIGALRM`` back to its previous handler."""
        if self.active:
            self.disarm()
            signal.signal(signal.SIGALRM, self._previous)
            self.active = False

    def arm(self, seconds: float) -> None:
        if self.active and math.isfinite(seconds):
            self._armed = True
            signal.setitimer(signal.ITIMER_REAL, seconds)

    def disarm(self) -> None:
        if self._armed:
            self._armed = False  # first: an alarm delivered from here on is ignored
            signal.setitimer(signal.ITIMER_REAL, 0)

    def _on_alarm(self, signum: int, frame: Any) -> None:
        if self._armed:
            self._armed = False
            raise SoftTimeout


def describe_exception(exc: BaseException) -> str:
    try:
        text = f"{type(exc).__name__}: {exc}"
    except Exception:  # a broken __str__ must not turn an error report into a crash
        text = type(exc).__name__
    # backslashreplace: lone surrogates from a completion would make logging raise when printed
    return text[:_MESSAGE_CHARS].encode("utf-8", "backslashreplace").decode("utf-8")


def call_scored(
    fn: Callable[..., Any],
    completion: str,
    answer: str,
    kwargs: Mapping[str, Any],
    timer: SoftTimer,
    timeout_s: float,
    *,
    catch: type[BaseException] | tuple[type[BaseException], ...] = Exception,
) -> Outcome:
    """Call ``fn(completion, answer, **kwargs)`` under the soft timer and classify what happened.

    ``catch`` is what counts as a verifier error: ``Exception`` in the training process (so Ctrl-C
    still stops training), ``BaseException`` in a worker (where ``sys.exit()`` is just a bad verifier).
    """
    try:
        try:
            timer.arm(timeout_s)
            value = fn(completion, answer, **kwargs)
        finally:
            timer.disarm()
        return ("ok", to_reward(value), "")
    except SoftTimeout:
        return ("timeout", 0.0, f"exceeded timeout_s={timeout_s:g}")
    except catch as e:
        return ("error", 0.0, describe_exception(e))


class InProcessRunner:
    """Runs the scoring function in this process (``isolation="none"``): no IPC, no protection.

    Time limits are soft only and apply only when called on the main thread; a verifier stuck in C
    code, or one that crashes the interpreter, takes the training process with it.
    """

    def __init__(self, fn: Callable[..., Any], kwargs: Mapping[str, Any], timeout_s: float) -> None:
        self._fn = fn
        self._kwargs = dict(kwargs)
        self._timeout_s = timeout_s

    def run(self, completions: Sequence[str], answers: Sequence[str]) -> list[Outcome]:
        timer = SoftTimer()
        timer.install()  # per batch, so SIGALRM belongs to the host between batches
        try:
            return [
                call_scored(self._fn, c, a, self._kwargs, timer, self._timeout_s)
                for c, a in zip(completions, answers, strict=True)
            ]
        finally:
            timer.uninstall()

    def close(self) -> None:
        pass


# --- wire format (shared with priorl.rewards.worker) ---


def encode(message: Any) -> bytes:
    """One frame: an 8-byte big-endian length, then the message as JSON.

    ``ensure_ascii`` escapes every non-ASCII character, so lone surrogates in a model's output (invalid
    Unicode) cross the pipe intact and come back as the same ``str``; tuples arrive as lists.
    """
    data = json.dumps(message, ensure_ascii=True).encode("ascii")
    return _HEADER.pack(len(data)) + data


def read_message(stream: IO[bytes]) -> Any | None:
    """Read one frame from a blocking stream; None at end of stream."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        return None
    return json.loads(data)


class _FrameBuffer:
    """Reassembles frames from the chunks a non-blocking read returns."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        self._buf += data
        messages = []
        while len(self._buf) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buf)
            end = _HEADER.size + size
            if len(self._buf) < end:
                break
            messages.append(json.loads(bytes(self._buf[_HEADER.size : end])))
            del self._buf[:end]
        return messages


# The worker bootstrap gets the parent's sys.path before importing anything, so it resolves priorl and
# the user's verifier module exactly as the training process does (editable installs, test folders).
_BOOTSTRAP = "import json, sys; sys.path[:] = json.loads(sys.argv[1]); from priorl.rewards.worker import main; main()"


class _Worker:
    """One worker process and what the parent knows about it."""

    def __init__(self, command: list[str], init_message: Any) -> None:
        # Its own session (process group): a kill also takes down whatever the verifier started
        # (a sandboxed interpreter, a solver), and Ctrl-C in the terminal is left to the parent.
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True, start_new_session=True
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin: IO[bytes] = self.proc.stdin
        self.stdout: IO[bytes] = self.proc.stdout
        os.set_blocking(self.stdout.fileno(), False)
        self.frames = _FrameBuffer()
        self.ready = False
        self.spawned = time.monotonic()
        self.items: deque[int] = deque()  # batch indices sent and not yet answered, in scoring order
        self.item_started = 0.0  # when the worker began items[0], as seen from here (an upper bound)
        self.send(init_message)

    def send(self, message: Any) -> bool:
        """Write one message; False if the worker is gone. Blocks only while the worker reads it."""
        try:
            self.stdin.write(encode(message))
            self.stdin.flush()
            return True
        except (BrokenPipeError, OSError, ValueError):
            return False

    def receive(self) -> tuple[list[Any], bool]:
        """All complete messages available now, and whether the worker closed its end (died)."""
        messages: list[Any] = []
        while True:
            try:
                data = os.read(self.stdout.fileno(), 1 << 16)
            except BlockingIOError:
                return messages, False
            except OSError:
                return messages, True
            if not data:
                return messages, True
            messages += self.frames.feed(data)

    def kill(self) -> None:
        """SIGKILL the worker's process group, if the worker is still running; then reap it."""
        # Only while the worker is unreaped: its pid (= the group id) cannot have been reused yet.
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                self.proc.kill()
        self.proc.wait()

    def exit_code(self) -> int | None:
        try:
            return self.proc.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            return None


def _stop_workers(workers: list[_Worker], selector: selectors.BaseSelector, wait_s: float = 1.0) -> None:
    """Close every worker: EOF on its stdin asks it to exit; kill it if it has not within ``wait_s``."""
    for w in workers:
        try:
            w.stdin.close()
        except OSError:
            pass
    deadline = time.monotonic() + wait_s
    for w in workers:
        try:
            w.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            w.kill()
        w.stdout.close()
    workers.clear()
    selector.close()


class WorkerPool:
    """Worker processes that run a scoring function under soft and hard time limits.

    Each call to :meth:`run` splits the batch into chunks (about four per worker, at most 32
    completions each) and hands a chunk to whichever worker is idle: one pipe write per chunk, one
    small report per completion back. Workers start at construction, in the background; a batch
    waits for them. A worker killed for a timeout or found dead is replaced at once.

    Not thread-safe; :class:`~priorl.rewards.verifier.CallableVerifier` serializes calls.
    """

    def __init__(
        self,
        ref: FunctionRef,
        kwargs: Mapping[str, Any],
        *,
        timeout_s: float,
        workers: int,
        startup_timeout_s: float = 60.0,
        max_start_failures: int = 3,
    ) -> None:
        self.ref = ref
        self.n_workers = workers
        self.timeout_s = timeout_s
        # Hard limit = soft limit + grace: a soft timeout is reported by the worker itself (cheap);
        # the kill (and ~0.5 s restart) is for what the signal cannot interrupt.
        self.hard_limit_s = timeout_s + min(2.0, 0.1 + 0.25 * timeout_s) if math.isfinite(timeout_s) else None
        self.startup_timeout_s = startup_timeout_s
        self.max_start_failures = max_start_failures
        self.restarts = 0  # workers replaced after a kill or a crash, over the pool's life
        self._start_failures = 0  # consecutive workers that died before becoming ready
        self._command = [sys.executable, "-c", _BOOTSTRAP, json.dumps(sys.path)]
        self._init_message = ("init", dataclasses.asdict(ref), dict(kwargs), timeout_s)
        self._selector = selectors.DefaultSelector()
        self._workers: list[_Worker] = []
        self._closed = False
        # Reaps the workers even if close() is never called (garbage collection, interpreter exit).
        self._finalizer = weakref.finalize(self, _stop_workers, self._workers, self._selector)
        self._fill()

    def _fill(self) -> None:
        while len(self._workers) < self.n_workers:
            try:
                w = _Worker(self._command, self._init_message)
            except OSError as e:
                raise RuntimeError(f"verifier {self.ref.spec!r}: cannot start a worker process: {e}") from e
            self._selector.register(w.stdout, selectors.EVENT_READ, w)
            self._workers.append(w)

    def _retire(self, w: _Worker) -> None:
        self._selector.unregister(w.stdout)
        self._workers.remove(w)
        w.kill()
        for stream in (w.stdin, w.stdout):
            try:
                stream.close()
            except OSError:
                pass

    def _lose(
        self, w: _Worker, outcomes: list[Outcome | None], queue: deque[list[int]], status: Status, why: str
    ) -> int:
        """Retire a dead or hung worker; blame its current item, requeue the rest. Returns items resolved."""
        self._retire(w)
        if not w.ready:
            self._start_failures += 1
            if self._start_failures >= self.max_start_failures:
                raise RuntimeError(
                    f"verifier {self.ref.spec!r}: {self._start_failures} worker processes in a row failed "
                    f"to start (last: {why}); see their output on stderr"
                )
            return 0
        self.restarts += 1
        if not w.items:
            return 0
        outcomes[w.items.popleft()] = (status, 0.0, why)
        if w.items:
            queue.appendleft(list(w.items))
        return 1

    def _handle(self, w: _Worker, message: Any, outcomes: list[Outcome | None]) -> int:
        kind = message[0]
        if kind == "result":
            _, index, status, value, text = message
            if w.items and w.items[0] == index:
                w.items.popleft()
            elif index in w.items:  # cannot happen with an in-order worker; stay consistent anyway
                w.items.remove(index)
            else:
                return 0
            outcomes[index] = (status, value, text)
            w.item_started = time.monotonic()
            return 1
        if kind == "ready":
            w.ready = True
            self._start_failures = 0
            return 0
        if kind == "init_error":
            raise RuntimeError(f"verifier {self.ref.spec!r} failed to load in its worker process: {message[1]}")
        return 0

    def _next_wakeup(self, now: float) -> float:
        deadlines = [now + 5.0]  # wake now and then regardless; cheap, and bounds any bookkeeping slip
        for w in self._workers:
            if not w.ready:
                deadlines.append(w.spawned + self.startup_timeout_s)
            elif w.items and self.hard_limit_s is not None:
                deadlines.append(w.item_started + self.hard_limit_s)
        return max(0.0, min(deadlines) - now)

    def run(self, completions: Sequence[str], answers: Sequence[str]) -> list[Outcome]:
        """Score every pair; one outcome per pair, in order. Raises only if workers cannot start."""
        if self._closed:
            raise RuntimeError(f"verifier {self.ref.spec!r} is closed")
        outcomes: list[Outcome | None] = [None] * len(completions)
        todo = []
        for i, (c, a) in enumerate(zip(completions, answers, strict=True)):
            if isinstance(c, str) and isinstance(a, str):
                todo.append(i)
            else:  # anything else cannot cross the JSON pipe, and would fail in the verifier anyway
                outcomes[i] = ("error", 0.0, "TypeError: completion and answer must be str")
        size = max(1, min(32, math.ceil(len(todo) / (4 * self.n_workers))))
        queue: deque[list[int]] = deque(todo[i : i + size] for i in range(0, len(todo), size))
        left = len(todo)
        try:
            while left:
                self._fill()
                if self._dispatch(queue, completions, answers):
                    left -= self._collect(outcomes, queue)
                    left -= self._enforce_deadlines(outcomes, queue)
        except BaseException:
            # Interrupted (Ctrl-C, a worker that cannot load the function): workers may still hold
            # items of this batch, whose late results would land in the next one. Start afresh.
            for w in list(self._workers):
                self._retire(w)
            raise
        return outcomes  # type: ignore[return-value]  # every slot was filled: left == 0

    def _dispatch(self, queue: deque[list[int]], completions: Sequence[str], answers: Sequence[str]) -> bool:
        """Give a chunk to every idle worker; False if one turned out dead (replace it first)."""
        for w in list(self._workers):
            if queue and w.ready and not w.items:
                chunk = queue.popleft()
                if w.send(("score", [(i, completions[i], answers[i]) for i in chunk])):
                    w.items.extend(chunk)
                    w.item_started = time.monotonic()
                else:  # died while idle: nothing of this batch was on it
                    queue.appendleft(chunk)
                    self._retire(w)
                    self.restarts += 1
        return len(self._workers) == self.n_workers

    def _collect(self, outcomes: list[Outcome | None], queue: deque[list[int]]) -> int:
        """Wait for reports (or the next deadline) and record them. Returns items resolved."""
        resolved = 0
        for key, _ in self._selector.select(self._next_wakeup(time.monotonic())):
            w = key.data
            messages, eof = w.receive()
            for message in messages:
                resolved += self._handle(w, message, outcomes)
            if eof:
                code = w.exit_code()
                resolved += self._lose(w, outcomes, queue, "error", f"worker process died (exit code {code})")
        return resolved

    def _enforce_deadlines(self, outcomes: list[Outcome | None], queue: deque[list[int]]) -> int:
        """Kill workers past their hard limit or start-up deadline. Returns items resolved."""
        resolved = 0
        now = time.monotonic()
        for w in list(self._workers):
            if not w.ready and now - w.spawned > self.startup_timeout_s:
                self._lose(w, outcomes, queue, "error", f"not ready after {self.startup_timeout_s:g} s")
            elif w.items and self.hard_limit_s is not None and now - w.item_started > self.hard_limit_s:
                why = f"exceeded timeout_s={self.timeout_s:g} (worker killed)"
                resolved += self._lose(w, outcomes, queue, "timeout", why)
        return resolved

    def pids(self) -> list[int]:
        """Process ids of the current workers (for tests and debugging)."""
        return [w.proc.pid for w in self._workers]

    def close(self) -> None:
        """Stop every worker (EOF, then kill after 1 s). Idempotent."""
        self._closed = True
        self._finalizer()
