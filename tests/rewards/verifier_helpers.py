"""User verifiers for the tests. ``score`` obeys a command in the completion, e.g. ``"sleep:30"``."""

import ctypes
import os
import signal
import subprocess
import sys
import time

NOT_CALLABLE = 3


def score(completion: str, answer: str, **kwargs: object) -> object:
    command, _, arg = completion.partition(":")
    if command == "raise":
        raise RuntimeError("boom")
    if command == "return":
        return {
            "1.7": 1.7,
            "nan": float("nan"),
            "inf": float("inf"),
            "-0.5": -0.5,
            "true": True,
            "false": False,
            "str": "0.5",
            "none": None,
            "half": 0.5,
            "int1": 1,
        }[arg]
    if command == "sleep":  # interruptible: the soft (SIGALRM) time limit ends it
        time.sleep(float(arg))
        return 1.0
    if command == "busy":  # pure-Python loop: also interruptible
        end = time.monotonic() + float(arg)
        while time.monotonic() < end:
            pass
        return 1.0
    if command == "blocked-sleep":  # SIGALRM blocked, like a long C call: only a kill ends it
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(float(arg))
        return 1.0
    if command == "swallow":  # catches the soft time-out and carries on: only a kill ends it
        try:
            time.sleep(float(arg))
        except BaseException:
            time.sleep(float(arg))
        return 1.0
    if command == "spawn-and-hang":  # a grandchild process, then a hang only a kill ends
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        with open(answer, "w") as f:
            f.write(str(child.pid))
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        child.wait()
        return 1.0
    if command == "exit":
        os._exit(3)
    if command == "sysexit":
        sys.exit(1)
    if command == "segfault":
        ctypes.string_at(0)
    if command == "print":
        print("chatter on stdout, which must not reach the protocol pipe")
        sys.stdout.flush()
        return 1.0
    if command == "pid":
        return 1.0 if os.getpid() else 0.0
    return 1.0 if completion == answer else 0.0


def weighted(completion: str, answer: str, *, weight: float = 1.0) -> float:
    return weight if completion == answer else 0.0


def one_arg(completion: str) -> float:
    return 0.0
