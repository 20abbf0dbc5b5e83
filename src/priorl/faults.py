"""Fault injection for the reliability tests: kill this process at a named point of a given step.

Set ``PRIORL_FAULT=POINT:STEP[,POINT:STEP...]`` to SIGKILL the training process when it reaches
``POINT`` during step ``STEP`` (points: ``generate``, ``update``, ``logged``, ``checkpoint``). The test
suite uses it to kill a real training subprocess at reproducible moments and check that
``priorl train --resume`` continues exactly. Unset (the normal case), :func:`maybe_fault` is a dict
lookup.
"""

from __future__ import annotations

import os
import signal

POINTS = ("generate", "update", "logged", "checkpoint")


def _parse(spec: str) -> set[tuple[str, int]]:
    out = set()
    for item in filter(None, (s.strip() for s in spec.split(","))):
        point, _, step = item.partition(":")
        if point not in POINTS or not step.isdigit():
            raise ValueError(f"PRIORL_FAULT item {item!r}: expected POINT:STEP with POINT in {POINTS}")
        out.add((point, int(step)))
    return out


_FAULTS = _parse(os.environ.get("PRIORL_FAULT", ""))


def maybe_fault(point: str, step: int) -> None:
    """SIGKILL this process if ``PRIORL_FAULT`` names this point and step."""
    if _FAULTS and (point, step) in _FAULTS:
        os.kill(os.getpid(), signal.SIGKILL)
