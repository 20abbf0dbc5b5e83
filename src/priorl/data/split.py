"""A held-out split of a training set, for runs given training data and no test set.

The split is seeded with a fixed seed (:data:`SPLIT_SEED`), not the run's seed, so that every run and
every seed on the same data holds out the same problems and their accuracies compare.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from priorl.types import Problem

SPLIT_SEED = 0


def held_out_split(
    problems: list[Problem], fraction: float, cap: int, *, seed: int = SPLIT_SEED
) -> tuple[list[Problem], list[Problem]]:
    """Split ``problems`` into (train, test): ``round(fraction * M)`` problems (at least 1, at most ``cap``)
    drawn with ``seed`` (default :data:`SPLIT_SEED`; the validation split uses ``SPLIT_SEED + 1``) are held
    out. Both keep the file order and are re-numbered 0..n-1.

    Raises:
        ValueError: fewer than 2 problems (nothing would be left on one side).
    """
    m = len(problems)
    if m < 2:
        raise ValueError(f"cannot hold out a test split of {m} problem(s); pass a test set (--test FILE)")
    n_test = min(cap, max(1, round(fraction * m)), m - 1)
    held = set(np.random.default_rng(seed).permutation(m)[:n_test].tolist())
    train = [p for i, p in enumerate(problems) if i not in held]
    test = [p for i, p in enumerate(problems) if i in held]

    def renumber(ps: list[Problem]) -> list[Problem]:
        return [dataclasses.replace(p, id=i) for i, p in enumerate(ps)]

    return renumber(train), renumber(test)
