"""The verifier protocol, its batch result, and the rule for what counts as a valid reward.

A verifier scores each completion of a training step against that problem's gold answer. The
trainer calls :meth:`Verifier.score_batch` once per step with every completion of the step, so a
verifier can batch its work (ship chunks to worker processes) and report what went wrong as counts
rather than exceptions: one bad completion must never stop or stall training.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["InvalidReward", "ScoreResult", "Verifier", "to_reward"]


@dataclass
class ScoreResult:
    """Rewards for one batch of completions, and what went wrong while computing them.

    A completion whose verifier raised, returned an invalid value or ran out of time gets reward 0
    and is counted in ``errors`` or ``timeouts`` (never both).
    """

    rewards: list[float]  # one per completion, in [0, 1]
    errors: int = 0  # completions whose verifier raised, returned an invalid value, or crashed its worker
    timeouts: int = 0  # completions whose verifier exceeded timeout_s
    seconds: float = 0.0  # wall time of the whole batch

    def metrics(self) -> dict[str, float]:
        """Flat metrics with relative keys; the caller adds the namespace (``reward/``)."""
        n = len(self.rewards)
        return {
            "mean": sum(self.rewards) / n if n else 0.0,
            "errors": float(self.errors),
            "timeouts": float(self.timeouts),
            "seconds": self.seconds,
        }


@runtime_checkable
class Verifier(Protocol):
    """Scores completions against gold answers; rewards in [0, 1]."""

    name: str

    def score_batch(self, completions: Sequence[str], answers: Sequence[str]) -> ScoreResult:
        """Score ``completions[i]`` against ``answers[i]`` for every i; never raises for a bad completion."""
        ...

    def close(self) -> None:
        """Release worker processes, if any. Idempotent."""
        ...


class InvalidReward(ValueError):
    """A verifier returned something that is not a finite number in [0, 1]."""


def to_reward(value: Any) -> float:
    """Check a verifier's return value and convert it to a float reward.

    Accepted: ``bool`` (True -> 1.0) and anything ``float()`` converts (int, float, numpy and
    one-element torch scalars) that is finite and within [0, 1]. Strings are refused even when
    they spell a number: a verifier returning ``"1"`` is almost certainly a bug.

    Raises:
        InvalidReward: for NaN, +-inf, values outside [0, 1], strings, None, complex, other objects.
    """
    if isinstance(value, bool):
        return float(value)
    if value is None or isinstance(value, str | bytes | bytearray | complex):
        raise InvalidReward(f"verifier returned {type(value).__name__}, not a number in [0, 1]")
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidReward(f"verifier returned {type(value).__name__}, not a number in [0, 1]") from None
    if not math.isfinite(x) or not 0.0 <= x <= 1.0:
        raise InvalidReward(f"verifier returned {x!r}, not a finite number in [0, 1]")
    return x + 0.0  # -0.0 -> 0.0
