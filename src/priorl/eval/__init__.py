"""Evaluation: held-out accuracy by difficulty level, AES, and side-by-side comparison of strategies."""

from priorl.eval.accuracy import evaluate, evaluate_held_out
from priorl.eval.aes import aes

__all__ = ["aes", "evaluate", "evaluate_held_out"]
