"""Verifiers: score a completion against a gold answer, reward in [0, 1].

>>> from priorl.rewards import make_verifier
>>> with make_verifier("numeric") as verifier:
...     verifier.score_batch(["so the answer is 1,234.", "I think 12"], ["1234", "13"]).rewards
[1.0, 0.0]

Built-ins: ``exact`` (stripped string equality), ``numeric`` (the answer after the first cue such as
"The answer is" / ``####`` / ``\\boxed{}``, else the last number; compared numerically),
``math`` (symbolic equivalence with math-verify). Any ``module:function`` or ``file.py:function``
with the signature ``f(completion, answer, **kwargs) -> float`` works too. Failures and time-outs
score 0 and are counted, never raised: see ``docs/verifiers.md``.

Importing this package imports no heavy dependency; math-verify loads on first use.
"""

from priorl.rewards.base import InvalidReward, ScoreResult, Verifier, to_reward
from priorl.rewards.builtin import answer_segment, exact_score, extract_answer, extract_last_number, numeric_score
from priorl.rewards.loading import BUILTIN_VERIFIERS
from priorl.rewards.math_verifier import math_score
from priorl.rewards.verifier import DEFAULT_TIMEOUT_S, CallableVerifier, default_workers, make_verifier

__all__ = [
    "BUILTIN_VERIFIERS",
    "DEFAULT_TIMEOUT_S",
    "CallableVerifier",
    "InvalidReward",
    "ScoreResult",
    "Verifier",
    "answer_segment",
    "default_workers",
    "exact_score",
    "extract_answer",
    "extract_last_number",
    "make_verifier",
    "math_score",
    "numeric_score",
    "to_reward",
]
