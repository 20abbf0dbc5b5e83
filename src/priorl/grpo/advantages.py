"""Group-relative advantages."""

from __future__ import annotations

import numpy as np


def group_advantages(rewards: np.ndarray, scale: str = "group", eps: float = 1e-6) -> np.ndarray:
    """``A_i = r_i - mean(r)`` per group (row), divided by ``std(r) + eps`` when ``scale == "group"``.

    ``rewards``: [B, G]. The std is the unbiased sample std (as in TRL). A group whose rewards are all
    equal gets advantages of exactly 0.0 (``r - mean(r)`` is exact for equal values), which is what the
    replay buffer's zero-advantage filter relies on. ``scale == "none"`` is Dr. GRPO's form.
    """
    r = np.asarray(rewards, dtype=np.float64)
    if r.ndim != 2 or r.shape[1] < 1:
        raise ValueError(f"rewards must be [groups, group_size], got shape {r.shape}")
    centered = r - r.mean(axis=1, keepdims=True)
    equal = (r == r[:, :1]).all(axis=1)
    centered[equal] = 0.0  # guard: mean of equal floats can round; zero-variance groups give exactly 0
    if scale == "none":
        return centered
    if scale != "group":
        raise ValueError(f"advantage scale must be 'group' or 'none', got {scale!r}")
    std = r.std(axis=1, ddof=1, keepdims=True) if r.shape[1] > 1 else np.zeros((r.shape[0], 1))
    return centered / (std + eps)
