"""Empirical draw frequencies: P ∝ (|A| + eps) ** alpha for the prioritized buffer, uniform for the naive one.

Small capacities keep the trees shallow and the thousands of draws fast. Fixed seeds make these
deterministic; the chi-square bound sits about 5 standard deviations above its mean, far from what a
correct sampler produces and far below what a wrong one does.
"""

from __future__ import annotations

import math
from itertools import permutations

import numpy as np
import pytest
from replay_helpers import batch

from priorl.replay import AdvReplayBuffer, NaiveReplayBuffer

ADVANTAGES = [0.05, -0.1, 0.3, -0.6, 1.0, 0.0, -0.02]


def chi_square(counts: np.ndarray, probs: np.ndarray) -> float:
    expected = probs * counts.sum()
    return float(((counts - expected) ** 2 / expected).sum())


def bound(df: int) -> float:
    return df + 5 * math.sqrt(2 * df)


def weights(advantages, alpha, eps):
    return (np.abs(np.asarray(advantages)) + eps) ** alpha


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_single_draws_follow_priorities(alpha):
    eps = 1e-6
    buf = AdvReplayBuffer(priority_exponent=alpha, eps=eps, seed=11, capacity=8)
    buf.add(batch(ADVANTAGES, step=0))
    kept = [a for a in ADVANTAGES if a != 0.0]  # the zero-advantage rollout is never stored
    ids = [i for i, a in enumerate(ADVANTAGES) if a != 0.0]
    counts = np.zeros(len(ADVANTAGES))
    for _ in range(4000):
        (r,) = buf.sample(1, step=0)
        counts[r.problem_id] += 1
    assert counts[ADVANTAGES.index(0.0)] == 0
    w = weights(kept, alpha, eps)
    assert chi_square(counts[ids], w / w.sum()) < bound(len(kept) - 1)


def test_a_wrong_distribution_fails_the_same_check():
    # Guards the test itself: uniform counts must not pass as alpha = 1 priorities.
    counts = np.full(6, 4000 / 6)
    w = weights([a for a in ADVANTAGES if a != 0.0], 1.0, 1e-6)
    assert chi_square(counts, w / w.sum()) > 10 * bound(5)


@pytest.mark.parametrize(
    "advantages",
    [
        [0.5, -0.5, 0.4, 0.6],  # even weights: repeats are rare, the rejection rounds finish alone
        [1.0, 0.001, -0.002, 0.003],  # one dominant: rejection gives up and SumTree.draw finishes
    ],
)
def test_draws_of_two_follow_sequential_sampling_without_replacement(advantages, monkeypatch):
    buf = AdvReplayBuffer(priority_exponent=1.0, eps=1e-6, seed=3, capacity=4)
    buf.add(batch(advantages, step=0))
    tree = buf.selector.tree
    calls = {"draw": 0}
    real_draw = tree.draw

    def counting_draw(k, rng):
        calls["draw"] += 1
        return real_draw(k, rng)

    monkeypatch.setattr(tree, "draw", counting_draw)
    w = weights(advantages, 1.0, 1e-6)
    pairs = list(permutations(range(4), 2))
    probs = np.array([w[i] / w.sum() * w[j] / (w.sum() - w[i]) for i, j in pairs])
    index = {p: n for n, p in enumerate(pairs)}
    counts = np.zeros(len(pairs))
    for _ in range(4000):
        a, b = buf.sample(2, step=0)
        counts[index[(a.problem_id, b.problem_id)]] += 1
    assert chi_square(counts, probs) < bound(len(pairs) - 1)
    if advantages[0] == 1.0:
        assert calls["draw"] > 0  # the fallback path was exercised


def test_first_of_a_large_draw_follows_priorities():
    # A draw of many: its first element is one single draw from all weights.
    advantages = np.linspace(-1.0, 1.0, 41)
    advantages = advantages[advantages != 0.0]
    buf = AdvReplayBuffer(priority_exponent=0.5, seed=2, capacity=100)
    buf.add(batch(advantages.tolist(), step=0))
    counts = np.zeros(advantages.size)
    for _ in range(3000):
        counts[buf.sample(10, step=0)[0].problem_id] += 1
    w = weights(advantages, 0.5, 1e-6)
    assert chi_square(counts, w / w.sum()) < bound(advantages.size - 1)


def test_naive_buffer_draws_uniformly():
    buf = NaiveReplayBuffer(seed=4, capacity=8)
    buf.add(batch(ADVANTAGES, step=0))
    ids = [i for i, a in enumerate(ADVANTAGES) if a != 0.0]
    counts = np.zeros(len(ADVANTAGES))
    for _ in range(3000):
        for r in buf.sample(2, step=0):
            counts[r.problem_id] += 1
    assert counts[ADVANTAGES.index(0.0)] == 0
    assert chi_square(counts[ids], np.full(len(ids), 1 / len(ids))) < bound(len(ids) - 1)
