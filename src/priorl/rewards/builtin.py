"""The cheap built-in verifiers: ``exact`` and ``numeric``, and the answer-extraction rules they share.

Both are pure functions of two strings, bounded in time for any input, so they run in the training
process by default.

Where the answer is read (:func:`answer_segment`; the same rules for a completion and a gold answer):

1. The first *cue* in the text decides: ``\\boxed{...}`` (its brace-matched content), ``####`` or an answer
   phrase (``answer is``, ``answer:``, any case, so also "The final answer is", "Answer:"); whichever comes
   first. The answer is the first number in the boxed content, or the first number in the 200 characters
   after ``####`` / the phrase. A cue with no number there means no answer (reward 0): a later number is not
   taken instead. This reads "The answer is 12. Question: what is 3+4? The answer is 7" as 12, the answer
   a base model gave before running on.
2. No cue: the last number of the text (of its last 8192 characters), for completions that are the bare
   answer ("46") or end with it ("12 + 34 = 46").
"""

from __future__ import annotations

import re
from fractions import Fraction

__all__ = ["answer_segment", "exact_score", "extract_answer", "extract_last_number", "numeric_score"]

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

# The cues of rule 1. One linear-time regex; the first match in the text wins.
_CUE_RE = re.compile(r"\\boxed\s*\{|####|\banswer(?:\s+is\b|\s*:)", re.IGNORECASE)
CUE_WINDOW = 200  # characters after "####" / "answer is" searched for the answer
_MAX_BOXED = 2000  # characters of a \boxed{...} searched for its closing brace


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


def answer_segment(text: str) -> tuple[str, str] | None:
    """``(cue, segment)`` for the first cue in ``text`` (``"boxed"``, ``"####"`` or ``"phrase"``), else None.

    The segment is the brace-matched content of ``\\boxed{...}`` (up to 2000 characters), or the 200
    characters after ``####`` or the answer phrase.
    """
    match = _CUE_RE.search(text)
    if match is None:
        return None
    start = match.end()
    if match.group(0).startswith("\\"):
        depth, i, limit = 1, start, min(len(text), start + _MAX_BOXED)
        while i < limit:
            depth += (text[i] == "{") - (text[i] == "}")
            if depth == 0:
                break
            i += 1
        return "boxed", text[start:i]
    return ("####" if match.group(0) == "####" else "phrase"), text[start : start + CUE_WINDOW]


def _match_value(match: re.Match) -> Fraction | None:
    numerator, denominator = match["fnum"] or match["num"], match["fden"] or match["den"]
    value = _to_fraction(numerator)
    if value is not None and denominator is not None:
        den = _to_fraction(denominator)
        value = None if den is None or den == 0 else value / den
    if value is not None and match["neg"]:
        value = -value
    return value


def extract_answer(text: str) -> Fraction | None:
    """The answer ``text`` gives, by the rules in the module docstring: after the first cue, else the last number."""
    found = answer_segment(text)
    if found is None:
        return extract_last_number(text)
    match = _NUMBER_RE.search(found[1])
    return None if match is None else _match_value(match)


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
    return None if last is None else _match_value(last)


def numeric_score(completion: str, answer: str, *, rel_tol: float = 1e-6, abs_tol: float = 1e-9) -> float:
    """1.0 if the completion's answer equals the gold answer's, else 0.0; both read by :func:`extract_answer`.

    Equality is ``|a - b| <= max(rel_tol * max(|a|, |b|), abs_tol)``, computed on exact fractions so
    huge or tiny values neither overflow nor lose precision. A completion without a parsable number
    scores 0.0; a gold answer without one raises ``ValueError`` (a data problem, counted as an error
    so that it shows in the metrics instead of silently zeroing the rewards).
    """
    gold = extract_answer(answer)
    if gold is None:
        raise ValueError("the gold answer contains no parsable number")
    pred = extract_answer(completion)
    if pred is None:
        return 0.0
    tolerance = max(Fraction(rel_tol) * max(abs(gold), abs(pred)), Fraction(abs_tol))
    return 1.0 if abs(gold - pred) <= tolerance else 0.0
