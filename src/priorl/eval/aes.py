"""Accuracy-efficiency score (AES, from O1-Pruner, arXiv 2501.12570) of a run against a baseline run."""

from __future__ import annotations


def aes(
    accuracy: float,
    length: float,
    base_accuracy: float,
    base_length: float,
    *,
    a: float = 1.0,
    b: float = 3.0,
    c: float = 5.0,
) -> float:
    """``a*dL + b*|dAcc|`` if accuracy did not drop, else ``a*dL - c*|dAcc|``.

    ``dL = (L_base - L) / L_base`` (shorter responses score higher) and ``dAcc = (Acc - Acc_base) /
    Acc_base``; ``L`` is the mean response length in tokens. Raises ValueError for a zero baseline.
    """
    if base_length <= 0 or base_accuracy <= 0:
        raise ValueError(f"AES needs a positive baseline accuracy and length, got {base_accuracy}, {base_length}")
    d_len = (base_length - length) / base_length
    d_acc = (accuracy - base_accuracy) / base_accuracy
    return a * d_len + (b * abs(d_acc) if d_acc >= 0 else -c * abs(d_acc))
