"""Sum-tree: unit tests and hypothesis properties (sums, draws, distributions)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from priorl.sumtree import SumTree


def chi_square(counts: np.ndarray, probs: np.ndarray) -> float:
    expected = probs * counts.sum()
    return float(((counts - expected) ** 2 / expected).sum())


def chi_square_bound(df: int) -> float:
    # Mean df, sd sqrt(2 df): mean + 5 sd is far in the tail, so a fixed-seed test is not flaky
    # but still fails on a wrong distribution (which gives a statistic in the thousands here).
    return df + 5 * math.sqrt(2 * df)


def assert_consistent(tree: SumTree, weights: np.ndarray) -> None:
    """Leaves equal the model and every inner node is exactly the sum of its two children."""
    np.testing.assert_array_equal(tree.weights(), weights)
    inner = tree._tree[1 : tree._size]
    children = tree._tree[2 : 2 * tree._size : 2] + tree._tree[3 : 2 * tree._size : 2]
    np.testing.assert_array_equal(inner, children)
    assert tree.total == pytest.approx(weights.sum(), rel=1e-12, abs=1e-300)


# ---------------------------------------------------------------------------------------- units
def test_starts_empty_and_rejects_bad_capacity():
    tree = SumTree(5)
    assert tree.total == 0.0
    np.testing.assert_array_equal(tree.weights(), np.zeros(5))
    assert tree.draw(3, np.random.default_rng(0)).size == 0
    with pytest.raises(ValueError, match="0"):
        SumTree(0)


def test_capacity_one():
    tree = SumTree(1)
    tree.update(0, 2.5)
    assert tree.total == 2.5
    assert tree.draw(3, np.random.default_rng(0)).tolist() == [0]


def test_update_rejects_bad_leaves_and_weights():
    tree = SumTree(4)
    with pytest.raises(ValueError, match="leaf 4"):
        tree.update([4], [1.0])
    with pytest.raises(ValueError, match="leaf -1"):
        tree.update([-1], [1.0])
    with pytest.raises(ValueError, match="nan"):
        tree.update([0], [float("nan")])
    with pytest.raises(ValueError, match="-1"):
        tree.update([0], [-1.0])
    with pytest.raises(ValueError, match="shape"):
        tree.set_all(np.ones(3))
    with pytest.raises(ValueError, match="negative"):
        tree.draw(-1, np.random.default_rng(0))
    assert tree.total == 0.0  # nothing was written by the rejected calls


def test_duplicate_leaves_take_the_last_value():
    tree = SumTree(4)
    tree.update([1, 1, 2], [5.0, 7.0, 1.0])
    np.testing.assert_array_equal(tree.weights(), [0.0, 7.0, 1.0, 0.0])
    assert tree.total == 8.0


def test_find_matches_a_cumulative_sum():
    # Integer weights make every partial sum exact, so find must agree with searchsorted exactly,
    # including on interval boundaries and across zero-weight leaves.
    weights = np.array([3.0, 0.0, 1.0, 4.0, 0.0, 0.0, 2.0])
    tree = SumTree(weights.size)
    tree.set_all(weights)
    targets = np.arange(0.0, weights.sum(), 0.5)
    expected = np.searchsorted(np.cumsum(weights), targets, side="right")
    np.testing.assert_array_equal(tree.find(targets), expected)


def test_set_all_matches_updates_bit_for_bit():
    rng = np.random.default_rng(1)
    weights = rng.uniform(0, 1, 37)
    a, b = SumTree(37), SumTree(37)
    a.set_all(weights)
    for i in rng.permutation(37):
        b.update([i], [weights[i]])
    np.testing.assert_array_equal(a._tree, b._tree)


def test_draw_restores_weights_and_pop_keeps_them_zero():
    tree = SumTree(10)
    weights = np.arange(1.0, 11.0)
    tree.set_all(weights)
    rng = np.random.default_rng(0)
    drawn = tree.draw(4, rng)
    assert len(set(drawn.tolist())) == 4
    assert_consistent(tree, weights)
    popped = tree.pop(3, rng)
    after = weights.copy()
    after[popped] = 0.0
    assert_consistent(tree, after)


def test_single_draw_frequencies_follow_weights():
    weights = np.array([1.0, 2.0, 0.0, 4.0, 8.0, 0.5, 3.0])
    tree = SumTree(weights.size)
    tree.set_all(weights)
    rng = np.random.default_rng(123)
    # One vectorized descent for many single draws: each target is one independent draw.
    leaves = tree.find(rng.random(200_000) * tree.total)
    counts = np.bincount(leaves, minlength=weights.size)
    assert counts[2] == 0
    positive = weights > 0
    probs = weights[positive] / weights.sum()
    assert chi_square(counts[positive], probs) < chi_square_bound(positive.sum() - 1)
    # And through draw(1), the public path.
    counts = np.zeros(weights.size)
    for _ in range(5_000):
        counts[tree.draw(1, rng)[0]] += 1
    assert counts[2] == 0
    assert chi_square(counts[positive], probs) < chi_square_bound(positive.sum() - 1)


def test_draw_without_replacement_follows_sequential_sampling():
    # Ordered pairs (i, j): P = w_i / W * w_j / (W - w_i). One dominant weight makes repeats common,
    # so the rejection rounds inside draw are exercised.
    weights = np.array([10.0, 1.0, 2.0, 3.0])
    tree = SumTree(4)
    tree.set_all(weights)
    total = weights.sum()
    pairs = [(i, j) for i in range(4) for j in range(4) if i != j]
    probs = np.array([weights[i] / total * weights[j] / (total - weights[i]) for i, j in pairs])
    index = {p: n for n, p in enumerate(pairs)}
    counts = np.zeros(len(pairs))
    rng = np.random.default_rng(7)
    for _ in range(6_000):
        i, j = tree.draw(2, rng)
        counts[index[(int(i), int(j))]] += 1
    assert chi_square(counts, probs) < chi_square_bound(len(pairs) - 1)


# ----------------------------------------------------------------------------------- properties
updates = st.lists(
    st.tuples(
        st.lists(st.integers(0, 63), min_size=0, max_size=20),
        st.one_of(st.just(0.0), st.floats(0.0, 1e3, allow_nan=False)),
    ),
    max_size=15,
)


@settings(max_examples=60, deadline=None)
@given(capacity=st.integers(1, 64), ops=updates)
def test_totals_equal_sums_of_leaves_after_random_updates(capacity, ops):
    tree = SumTree(capacity)
    model = np.zeros(capacity)
    for leaves, value in ops:
        leaves = [leaf % capacity for leaf in leaves]
        tree.update(leaves, value)
        model[leaves] = value
        assert_consistent(tree, model)


@settings(max_examples=60, deadline=None)
@given(
    weights=st.lists(st.one_of(st.just(0.0), st.floats(1e-6, 1e3)), min_size=1, max_size=50),
    k=st.integers(0, 60),
    seed=st.integers(0, 2**32 - 1),
)
def test_draw_returns_distinct_positive_weight_leaves(weights, k, seed):
    weights = np.array(weights)
    tree = SumTree(weights.size)
    tree.set_all(weights)
    drawn = tree.draw(k, np.random.default_rng(seed))
    assert len(set(drawn.tolist())) == drawn.size  # distinct
    assert np.all(weights[drawn] > 0)  # only positive weights
    assert drawn.size == min(k, int(np.count_nonzero(weights)))  # as many as possible
    assert_consistent(tree, weights)  # drawing removes nothing
