"""Evaluation: held-out accuracy by difficulty level."""

from priorl.eval.accuracy import evaluate

__all__ = ["evaluate"]
