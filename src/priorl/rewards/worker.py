"""The worker process of :class:`priorl.rewards.isolation.WorkerPool`.

Started as ``python -c <bootstrap> <sys.path as JSON>``. Protocol on the original stdin/stdout
(length-prefixed JSON, see :func:`priorl.rewards.isolation.encode`):

- parent -> worker: ``("init", ref, kwargs, timeout_s)`` once, then ``("score", [(index, completion,
  answer), ...])`` per chunk; end of stream means exit.
- worker -> parent: ``("ready", pid)`` or ``("init_error", message)``, then ``("result", index,
  status, reward, message)`` after every item, in order, so the parent always knows which item is
  running and can time it.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import IO, Any

from priorl.rewards.isolation import SoftTimer, call_scored, describe_exception, encode, read_message
from priorl.rewards.loading import FunctionRef, load_function


def _take_protocol_streams() -> tuple[IO[bytes], IO[bytes]]:
    """Keep private copies of stdin/stdout for the protocol and point fds 0/1 elsewhere.

    A verifier that prints (or a library that does) then writes to stderr, which the parent shares,
    instead of corrupting the frames; one that reads stdin gets EOF instead of stealing them.
    """
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    return proto_in, proto_out


def _exit_with_parent(poll_s: float = 1.0) -> None:
    """Exit when the parent does, even if it was killed and never closed our stdin.

    A thread rather than prctl(PR_SET_PDEATHSIG): that fires when the parent *thread* that started
    us exits, which in a thread-pooled host is not the parent process's death. While the main thread
    holds the GIL in one long C call this cannot run; the parent's hard time limit covers that case.
    """
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="priorl-parent-watch", daemon=True).start()


def main() -> None:
    proto_in, proto_out = _take_protocol_streams()
    # Ctrl-C in the terminal reaches the whole process group; the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()

    def send(message: Any) -> None:
        proto_out.write(encode(message))
        proto_out.flush()

    init = read_message(proto_in)
    if init is None:
        return
    _, ref_fields, kwargs, timeout_s = init
    try:
        fn = load_function(FunctionRef(**ref_fields))
        warmup = getattr(fn, "warmup", None)
        if callable(warmup):
            warmup()  # before "ready": start-up cost is not charged to the first completion's timeout
    except BaseException as e:
        send(("init_error", describe_exception(e)))
        return
    send(("ready", os.getpid()))

    timer = SoftTimer()
    timer.install()
    try:
        while (message := read_message(proto_in)) is not None and message[0] == "score":
            for index, completion, answer in message[1]:
                status, reward, text = call_scored(
                    fn, completion, answer, kwargs, timer, timeout_s, catch=BaseException
                )
                send(("result", index, status, reward, text))
    except BrokenPipeError:  # the parent is gone
        pass
    finally:
        sys.stdout.flush()


if __name__ == "__main__":
    main()
