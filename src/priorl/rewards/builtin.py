"""The cheap built-in verifiers: ``exact`` and ``numeric``.

Both are pure functions of two strings, bounded in time for any input (``numeric`` looks at a
fixed-size tail of the completion), so they run in the training process by default.
"""

from __future__ import annotations

import re
from fractions import Fraction

__all__ = ["exact_score", "extract_last_number", "numeric_score"]

# Only the last TAIL_CHARS characters of a completion are searched for its final number: the answer
# sits at the end, and this bounds the regex work on a degenerate 10 MB completion to a constant.
TAIL_CHARS = 8192
# Longer number tokens (or larger exponents) are treated as unparsable rather than converted:
# int() refuses more than 4300 digits anyway, and 1e999999999 as an exact Fraction would never finish.
_MAX_TOKEN_CHARS = 400
_MAX_EXPONENT = 400

# An unsigned number: 1,234,567 (groups of exactly three digits), 1234, 3.14, .5, each with an
# optional exponent (1.5e-3). ASCII digits only (re.ASCII below): "٣" is not a number here.
_UNSIGNED = r"(?:(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|(?<!\d)\.\d+)(?:[eE][-+]?\d+)?"
# A minus sign counts only where it cannot be a binary minus or a hyphen: "x = -3" is -3, "5-3" ends
# in 3, "pre-3" ends in 3. U+2212 (the typographic minus) counts as a minus.
_NUMBER_RE = re.compile(
    r"(?P<neg>(?<![\w)\]}])[-\u2212])?"
    r"(?:\\[dt]?frac ?\{ ?(?P<fnum>" + _UNSIGNED + r") ?\} ?\{ ?(?P<fden>" + _UNSIGNED + r") ?\}"
    r"|(?P<num>" + _UNSIGNED + r")(?: ?/ ?(?P<den>" + _UNSIGNED + r"))?)",
    re.ASCII,
)
_NUMBER_CHARS = "0123456789.,"


def exact_score(completion: str, answer: str) -> float:
    """1.0 if the completion equals the gold answer after stripping surrounding whitespace, else 0.0.

    Deliberately strict: no case folding, no Unicode normalization, no answer extraction. Meant for
    tasks whose completions are the bare answer; for free-form text use ``numeric`` or ``math``.
    """
    return 1.0 if completion.strip() == answer.strip() else 0.0


def _to_fraction(token: str) -> Fraction | None:
    token = token.replace(",", "")
    if len(token) > _MAX_TOKEN_CHARS:
        return None
    _, _, exponent = token.lower().partition("e")
    if exponent and abs(int(exponent)) > _MAX_EXPONENT:
        return None
    return Fraction(token)


def extract_last_number(text: str) -> Fraction | None:
    """The last number written in ``text``, as an exact fraction; None if there is none.

    Recognized forms: integers (``-42``), thousands separators (``1,234``), decimals (``3.14``,
    ``.5``), exponents (``1.5e-3``), simple fractions (``3/4``, ``-3 / 4``) and LaTeX fractions
    (``\\frac{3}{4}``, ``\\dfrac``, ``\\tfrac``). A zero denominator, a token over 400 characters or
    an exponent beyond +-400 makes the last number unparsable (None). Only the last 8192 characters
    are searched.
    """
    window = text
    if len(text) > TAIL_CHARS:
        window = text[-TAIL_CHARS:]
        if text[-TAIL_CHARS - 1] in _NUMBER_CHARS:
            # The cut fell inside a number: drop its tail rather than read it as a number of its own.
            window = window.lstrip(_NUMBER_CHARS)
    last = None
    for last in _NUMBER_RE.finditer(window):  # noqa: B007 - only the last match is wanted
        pass
    if last is None:
        return None
    numerator, denominator = last["fnum"] or last["num"], last["fden"] or last["den"]
    value = _to_fraction(numerator)
    if value is not None and denominator is not None:
        den = _to_fraction(denominator)
        value = None if den is None or den == 0 else value / den
    if value is not None and last["neg"]:
        value = -value
    return value


def numeric_score(completion: str, answer: str, *, rel_tol: float = 1e-6, abs_tol: float = 1e-9) -> float:
    """1.0 if the last number of the completion equals the last number of the gold answer, else 0.0.

    Equality is ``|a - b| <= max(rel_tol * max(|a|, |b|), abs_tol)``, computed on exact fractions so
    huge or tiny values neither overflow nor lose precision. A completion without a parsable number
    scores 0.0; a gold answer without one raises ``ValueError`` (a data problem, counted as an error
    so that it shows in the metrics instead of silently zeroing the rewards).
    """
    gold = extract_last_number(answer)
    if gold is None:
        raise ValueError("the gold answer contains no parsable number")
    pred = extract_last_number(completion)
    if pred is None:
        return 0.0
    tolerance = max(Fraction(rel_tol) * max(abs(gold), abs(pred)), Fraction(abs_tol))
    return 1.0 if abs(gold - pred) <= tolerance else 0.0
