"""The ``math`` verifier: symbolic answer equivalence with math-verify.

math-verify's own time limits (``parsing_timeout``, ``timeout_seconds``) use ``signal.alarm``: whole
seconds, a fresh budget for each parse and each comparison, and a ``ValueError`` off the main thread.
:func:`math_score` turns them off and leaves the limit to the caller's mechanism
(:mod:`priorl.rewards.isolation`), which gives one budget per completion and, in a worker process,
can kill a computation that no signal interrupts. So this function may run for an unbounded time
on pathological input (``9^9^9^9^9``): call it through a verifier, not bare, on model outputs.

Where the answer is read: the cue rules of :mod:`priorl.rewards.builtin` come first. When the text has a
cue, math-verify parses only what follows the first one: ``\\boxed{X}`` for a boxed answer, else the rest of
the sentence after ``####`` or the answer phrase (up to a newline or a period followed by a space). Without
a cue, math-verify parses the whole text with its defaults (the last ``\\boxed{}``, then LaTeX and plain
expressions). The same applies to the gold answer.

math-verify is imported on first use, so ``import priorl.rewards`` stays light.
"""

from __future__ import annotations

import functools
import logging
import re
from typing import Any

from priorl.rewards.builtin import answer_segment

__all__ = ["math_score"]

# Gold answers repeat G times per step (one group) and across epochs; parsing one costs ~1 ms to
# ~100 ms, so each process keeps the recent ones.
_GOLD_CACHE_SIZE = 4096
_DELIMITERS = ("$", "\\(", "\\[", "\\boxed")


_SENTENCE_END = re.compile(r"\n|\.\s")  # a newline, or a period before a space (not the one in 3.5)


def _answer_text(text: str) -> str | None:
    """What math-verify should parse: the part after the first cue (see the module docstring), or None."""
    found = answer_segment(text)
    if found is None:
        return None
    cue, segment = found
    if cue == "boxed":
        return "\\boxed{" + segment + "}"
    return _SENTENCE_END.split(segment, maxsplit=1)[0].strip().rstrip(".")


class _DropTimeoutDisabledWarning(logging.Filter):
    """math-verify warns once that its timeouts are off; here that is deliberate, not a hazard."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Timeout is disabled")


@functools.cache
def _math_verify() -> Any:
    import math_verify

    for name in ("math_verify.parser", "math_verify.grader"):
        logging.getLogger(name).addFilter(_DropTimeoutDisabledWarning())
    return math_verify


@functools.lru_cache(maxsize=_GOLD_CACHE_SIZE)
def _parse_gold(answer: str) -> list[Any]:
    mv = _math_verify()
    cued = _answer_text(answer)
    if cued is not None:
        answer = cued if cued.startswith("\\boxed") else "\\boxed{" + cued + "}"
    # Bare LaTeX gold answers ("\sqrt{2}", "2\sqrt{3}") are not found or are misread (as 2) without
    # delimiters; wrapping them in \boxed{} makes math-verify read the whole string as one expression.
    text = answer if any(d in answer for d in _DELIMITERS) else "\\boxed{" + answer.strip() + "}"
    return mv.parse(text, parsing_timeout=None)


def math_score(
    completion: str,
    answer: str,
    *,
    float_rounding: int = 6,
    numeric_precision: int = 15,
    strict: bool = True,
) -> float:
    """1.0 if math-verify finds the completion's answer equivalent to the gold answer, else 0.0.

    The completion's answer is located by the cue rules (module docstring), then parsed by math-verify,
    so ``$\\frac{1}{2}$`` matches ``0.5`` and ``$x=2$`` matches ``2``. The keyword arguments are passed to
    ``math_verify.verify``. A gold answer math-verify cannot parse raises ``ValueError`` (counted as an
    error). No time limit inside: see the module docstring.
    """
    gold = _parse_gold(answer)
    if not gold:
        raise ValueError("math-verify could not parse the gold answer")
    mv = _math_verify()
    cued = _answer_text(completion)
    pred = mv.parse(completion if cued is None else cued, parsing_timeout=None)
    ok = mv.verify(
        gold,
        pred,
        float_rounding=float_rounding,
        numeric_precision=numeric_precision,
        strict=strict,
        timeout_seconds=None,
    )
    return 1.0 if ok else 0.0


def _warmup() -> None:
    # Importing math-verify/sympy and building its LaTeX grammar takes ~0.5 s; a worker pays it at
    # start-up so the first completion it scores is not charged for it against timeout_s.
    math_score("$\\frac{1}{2}$", "0.5")


math_score.warmup = _warmup  # type: ignore[attr-defined]
