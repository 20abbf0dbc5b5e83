"""UniformSampler, the estimators, and the stochastic selection's draw frequencies."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from priorl import UniformSampler
from priorl.sampling.estimators import LastGroup
from priorl.sampling.experimental import ExperimentalPrioritizedSampler
from priorl.sampling.experimental.estimators import EMAEstimator, WindowEstimator
from priorl.sampling.experimental.selectors import StochasticSelector

ONE = np.array([8])  # group size


@given(m=st.integers(1, 40), b_frac=st.floats(0.01, 1.0), seed=st.integers(0, 5))
def test_uniform_covers_each_epoch_and_never_repeats_in_a_batch(m, b_frac, seed):
    b = max(1, int(b_frac * m))
    s = UniformSampler(m, seed=seed)
    counts = np.zeros(m, dtype=int)
    calls = 3 * m // b + 3
    for _ in range(calls):
        ids = s.sample(b)
        assert len(set(ids)) == b
        counts[ids] += 1
    # Epoch-wise sampling: counts differ by at most one epoch's worth, plus the boundary swaps.
    assert counts.max() - counts.min() <= 2


def test_uniform_state_round_trip_and_metrics():
    a = UniformSampler(30, seed=1)
    for _ in range(7):
        ids = a.sample(8)
        a.observe(ids, [[1.0, 0.0] if i % 2 else [1.0, 1.0] for i in ids])
    b = UniformSampler(30, seed=2)
    b.load_state_dict(a.state_dict())
    assert [b.sample(8) for _ in range(10)] == [a.sample(8) for _ in range(10)]
    m = a.metrics()
    assert m["solved"] + m["active"] + m["unseen"] == 30 and m["epoch"] >= 1
    with pytest.raises(ValueError, match="30 problems"):
        UniformSampler(31).load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="larger than the dataset"):
        a.sample(31)
    with pytest.raises(ValueError, match="NaN"):
        a.observe([0], [[float("nan")]])


def test_last_group_priority_is_p_times_one_minus_p():
    est = LastGroup(3)
    p, prio = est.update(np.array([0, 1, 2]), np.array([0.0, 0.25, 1.0]), np.array([0.0, 0.25, 1.0]), np.full(3, 4))
    assert prio.tolist() == [0.0, 0.1875, 0.0]


def test_ema_and_window_estimators():
    ema = EMAEstimator(2, decay=0.5)
    ema.update(np.array([0]), np.array([1.0]), np.array([1.0]), ONE)  # first group initializes
    p, prio = ema.update(np.array([0]), np.array([0.0]), np.array([0.0]), ONE)
    assert p[0] == 0.5 and prio[0] == pytest.approx(0.25)
    win = WindowEstimator(1, window=2)
    for v in (1.0, 0.0, 0.0):
        p, prio = win.update(np.array([0]), np.array([v]), np.array([v]), ONE)
    assert p[0] == 0.0 and prio[0] == 0.0  # the 1.0 fell out of the window
    fresh = WindowEstimator(1, window=2)
    fresh.load_state_dict(win.state_dict())
    assert fresh.update(np.array([0]), np.array([1.0]), np.array([1.0]), ONE)[0][0] == 0.5


def test_stochastic_selection_frequencies_follow_priority_power():
    priorities = np.array([0.25, 0.1875, 0.0, 0.09])
    alpha, floor = 0.5, 0.05
    rng = np.random.default_rng(0)
    sel = StochasticSelector(4, rng, alpha=alpha, floor=floor)
    counts = np.zeros(4)
    n = 20000
    for _ in range(n):
        sel.put(np.arange(4), priorities, np.zeros(4, dtype=np.int64))
        counts[sel.take(1)] += 1
    w = priorities**alpha + floor
    expected = n * w / w.sum()
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 16.3  # p = 0.001 for 3 degrees of freedom


def test_stochastic_sampler_prefers_high_priority():
    s = ExperimentalPrioritizedSampler(
        100, selection="stochastic", selection_exponent=2.0, floor=0.0, retest_every=None
    )

    def group(i):
        return [0.0, 1.0] if i < 10 else [0.0] * 7 + [1.0]  # variance 0.25 vs 0.109

    s.observe(list(range(100)), [group(i) for i in range(100)])
    hits = 0
    for _ in range(100):
        ids = s.sample(5)
        hits += sum(i < 10 for i in ids)
        s.observe(ids, [group(i) for i in ids])
    # Expected share: 10 * 0.25^2 / (10 * 0.25^2 + 90 * 0.109^2) = 37%, against 10% for uniform.
    assert 0.25 < hits / 500 < 0.5
