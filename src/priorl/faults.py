"""Fault injection for the reliability tests: signal this process at a named point of a given step.

Set ``PRIORL_FAULT=POINT:STEP[:SIGNAL][,POINT:STEP[:SIGNAL]...]`` to send ``SIGNAL`` (``KILL``, the default,
``INT`` or ``TERM``) to the training process when it reaches ``POINT`` during step ``STEP`` (points:
``generate``, ``update``, ``logged``, ``checkpoint``, ``eval``). The test suite uses it to kill or interrupt a
real training subprocess at reproducible moments and check that ``priorl train --resume`` continues
exactly. Unset (the normal case), :func:`maybe_fault` is a dict lookup.
"""

from __future__ import annotations

import os
import signal

POINTS = ("generate", "update", "logged", "checkpoint", "eval")
SIGNALS = {"KILL": signal.SIGKILL, "INT": signal.SIGINT, "TERM": signal.SIGTERM}


def _parse(spec: str) -> dict[tuple[str, int], signal.Signals]:
    out = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        point, _, rest = item.partition(":")
        step, _, sig = rest.partition(":")
        if point not in POINTS or not step.isdigit() or (sig or "KILL") not in SIGNALS:
            raise ValueError(
                f"PRIORL_FAULT item {item!r}: expected POINT:STEP[:SIGNAL] with POINT in {POINTS} "
                f"and SIGNAL in {tuple(SIGNALS)}"
            )
        out[(point, int(step))] = SIGNALS[sig or "KILL"]
    return out


_FAULTS = _parse(os.environ.get("PRIORL_FAULT", ""))


def maybe_fault(point: str, step: int) -> None:
    """Send this process the signal ``PRIORL_FAULT`` names for this point and step, if any.

    Each fault fires once, so a resumed run in the same process does not repeat it.
    """
    if _FAULTS and (point, step) in _FAULTS:
        os.kill(os.getpid(), _FAULTS.pop((point, step)))
