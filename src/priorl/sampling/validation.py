"""Input checks shared by the samplers: bad input raises ValueError naming the value, before any change."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def check_num_problems(num_problems: int) -> int:
    """Return ``num_problems`` as int if it is a positive int, else raise ValueError naming it."""
    if isinstance(num_problems, bool) or not isinstance(num_problems, (int, np.integer)) or num_problems < 1:
        raise ValueError(f"num_problems must be a positive int, got {num_problems!r}")
    return int(num_problems)


def check_batch_size(batch_size: int, num_problems: int) -> int:
    """Return ``batch_size`` as int if 1 <= batch_size <= num_problems, else raise ValueError."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise ValueError(f"batch_size must be an int, got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if batch_size > num_problems:
        raise ValueError(f"batch_size {batch_size} is larger than the dataset ({num_problems} problems)")
    return int(batch_size)


def group_moments(
    problem_ids: Sequence[int], rewards: Sequence[Sequence[float]], num_problems: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate an ``observe`` call and summarize each group.

    Returns ``(ids, m1, m2, var, size)``: int64 ids, and per group the mean reward, the mean squared
    reward, the population variance and the number of rewards. Raises ValueError for: a length mismatch,
    an id that is not an int in ``[0, num_problems)``, a group that is a single number instead of a
    sequence (``observe(ids, [0.5, 1.0])``: one group per problem is required), a nested group, an empty
    group, a NaN/inf reward or one outside [0, 1].
    """
    ids_list = list(problem_ids)
    # A 2-D array of rewards (one row per group) takes the vectorized path as it is.
    groups = rewards if isinstance(rewards, np.ndarray) and rewards.ndim == 2 else list(rewards)
    if len(ids_list) != len(groups):
        raise ValueError(f"got {len(ids_list)} problem ids but {len(groups)} reward groups")
    ids = _check_ids(ids_list, num_problems)
    m1, m2, size = _moments_rectangular(groups, ids)
    if m1 is None:
        m1, m2, size = _moments_ragged(groups, ids)
    var = np.maximum(m2 - m1 * m1, 0.0)
    return ids, m1, m2, var, size


def _not_a_group(pid: int, group) -> ValueError:
    # The mistake this catches: one number per problem (e.g. a pass rate) instead of one group of rewards.
    # Taken as groups of size 1, every such "group" has variance 0 and parks its problem.
    return ValueError(
        f"rewards of problem {pid} must be a group (a sequence) of rollout rewards, got {group!r}: observe takes "
        "one group per problem, e.g. observe([3, 7], [[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]]), not one number per problem"
    )


def _check_ids(ids_list: list, num_problems: int) -> np.ndarray:
    arr = np.asarray(ids_list) if ids_list else np.zeros(0, dtype=np.int64)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        for i, pid in enumerate(ids_list):  # find and name the offending element
            if isinstance(pid, bool) or not isinstance(pid, (int, np.integer)):
                raise ValueError(f"problem id at position {i} is not an int: {pid!r}")
        raise ValueError(f"problem ids must be a flat sequence of ints, got {ids_list!r}")
    bad = (arr < 0) | (arr >= num_problems)
    if bad.any():
        raise ValueError(f"problem id {int(arr[bad][0])} out of range [0, {num_problems})")
    return arr.astype(np.int64)


def _check_rewards(r: np.ndarray, ids: np.ndarray) -> None:
    bad = ~np.isfinite(r) | (r < 0.0) | (r > 1.0)
    if bad.any():
        row = int(np.argwhere(bad)[0][0]) if r.ndim == 2 else 0
        value = float(r[bad][0])
        what = "NaN" if math.isnan(value) else repr(value)
        pid = int(ids[row]) if r.ndim == 2 else int(ids[0])
        raise ValueError(f"reward {what} for problem {pid} is not a finite number in [0, 1]")


def _moments_rectangular(groups: list, ids: np.ndarray):
    """Fast path when every group has the same length: one 2-D array, vectorized moments."""
    if len(groups) == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64)
    try:
        r = np.asarray(groups, dtype=np.float64)
    except (TypeError, ValueError):
        return None, None, None
    if r.ndim == 1:
        raise _not_a_group(int(ids[0]), groups[0])
    if r.ndim != 2:
        return None, None, None
    if r.shape[1] == 0:
        raise ValueError(f"empty reward group for problem {int(ids[0])}")
    _check_rewards(r, ids)
    return r.mean(axis=1), (r * r).mean(axis=1), np.full(r.shape[0], r.shape[1], dtype=np.int64)


def _moments_ragged(groups: list, ids: np.ndarray):
    m1 = np.empty(len(groups))
    m2 = np.empty(len(groups))
    size = np.empty(len(groups), dtype=np.int64)
    for i, group in enumerate(groups):
        if isinstance(group, (str, bytes)) or np.ndim(group) == 0:
            raise _not_a_group(int(ids[i]), group)
        try:
            r = np.asarray(group, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"rewards of problem {int(ids[i])} are not numbers: {group!r}") from None
        if r.ndim != 1:
            raise ValueError(f"rewards of problem {int(ids[i])} must be a flat sequence of numbers, got {group!r}")
        if r.size == 0:
            raise ValueError(f"empty reward group for problem {int(ids[i])}")
        _check_rewards(r, ids[i : i + 1])
        m1[i] = r.mean()
        m2[i] = (r * r).mean()
        size[i] = r.size
    return m1, m2, size
