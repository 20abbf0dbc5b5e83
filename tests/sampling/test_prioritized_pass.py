"""PrioritizedPassSampler: distinct batches, coverage and starvation bounds, no parking on thin evidence, priorities,
state."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sampling_helpers import binary_group, run, to_json_and_back

from priorl import PrioritizedPassSampler, PrioritizedSampler
from priorl.sampling.experimental import VariancePassSampler
from priorl.sampling.experimental.variance_pass import scaled_variance
from priorl.sampling.prioritized_pass import informative_probability


# ---------------------------------------------------------------------------- selection
@given(
    m=st.integers(1, 60),
    b_frac=st.floats(0.01, 1.0),
    steps=st.integers(1, 15),
    seed=st.integers(0, 3),
    candidates=st.sampled_from([1.0, 1.5, 2.0, 4.0]),
    retest_fraction=st.sampled_from([0.0, 0.2]),
    data=st.data(),
)
def test_batch_never_repeats_an_id(m, b_frac, steps, seed, candidates, retest_fraction, data):
    b = max(1, int(b_frac * m))
    sampler = PrioritizedPassSampler(m, seed=seed, candidates=candidates, retest_fraction=retest_fraction)
    probs = data.draw(st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0]), min_size=m, max_size=m))
    for ids in run(sampler, steps, b, lambda t, i: binary_group(probs[i], 4)):
        assert len(ids) == b == len(set(ids))
        assert all(0 <= i < m for i in ids)


def test_candidates_one_is_uniform_passes():
    """candidates=1 selects every candidate: each problem exactly once per pass, like uniform GRPO."""
    m, b = 40, 8
    sampler = PrioritizedPassSampler(m, seed=0, candidates=1.0)
    batches = run(sampler, 10, b, lambda t, i: binary_group(1.0, 4))
    for epoch in range(2):
        ids = [i for ids in batches[epoch * 5 : (epoch + 1) * 5] for i in ids]
        assert sorted(ids) == list(range(m))


def test_selection_prefers_informative_problems():
    m, b = 400, 40
    sampler = PrioritizedPassSampler(m, seed=1)
    sampler.observe(list(range(200)), [binary_group(0.5, 8)] * 200)  # informative
    sampler.observe(list(range(200, 400)), [binary_group(1.0, 8)] * 200)  # solved
    ids = [i for ids in run(sampler, 5, b, lambda t, i: binary_group(0.5 if i < 200 else 1.0, 8)) for i in ids]
    assert np.mean(np.asarray(ids) < 200) > 0.8


# ---------------------------------------------------------------------------- bounds
@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(2, 80),
    b_frac=st.floats(0.05, 0.5),
    candidates=st.sampled_from([1.0, 1.5, 2.0, 3.0]),
    seed=st.integers(0, 5),
    steps=st.integers(1, 40),
    data=st.data(),
)
def test_coverage_bound_holds_for_any_rewards(m, b_frac, candidates, seed, steps, data):
    """Without retest slots a problem is selected at most once per pass: <= ceil(T C / M) + 1 after T calls."""
    b = max(1, int(b_frac * m))
    sampler = PrioritizedPassSampler(m, seed=seed, candidates=candidates)
    rewards = data.draw(st.lists(st.sampled_from([0.0, 0.5, 1.0]), min_size=m, max_size=m))
    batches = run(sampler, steps, b, lambda t, i: binary_group(rewards[(i + t) % m], 4))
    c = min(m, max(b, math.ceil(candidates * b)))
    assert np.bincount(np.concatenate(batches), minlength=m).max() <= math.ceil(steps * c / m) + 1


@settings(max_examples=30, deadline=None)
@given(
    m=st.integers(2, 60),
    b_frac=st.floats(0.05, 0.5),
    f=st.sampled_from([0.05, 0.2, 0.5]),
    seed=st.integers(0, 5),
    data=st.data(),
)
def test_starvation_bound_holds_for_any_rewards(m, b_frac, f, seed, data):
    b = max(1, int(b_frac * m))
    sampler = PrioritizedPassSampler(m, seed=seed, retest_fraction=f, selection_exponent=8.0)
    bound = sampler.starvation_bound(b)
    assert bound == math.ceil(m / math.ceil(f * b))
    rewards = data.draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=m, max_size=m))
    batches = run(sampler, 3 * bound, b, lambda t, i: binary_group(rewards[i], 4))
    for start in range(len(batches) - bound + 1):
        seen = {i for ids in batches[start : start + bound] for i in ids}
        assert seen == set(range(m)), f"window at call {start} missed {sorted(set(range(m)) - seen)[:5]}"


def test_no_deterministic_bound_without_retests():
    assert PrioritizedPassSampler(10).starvation_bound(2) is None


def _static_population(seed: int):
    rng = np.random.default_rng(seed)
    m = 1000
    p = np.concatenate([np.zeros(250), np.ones(250), rng.uniform(0.05, 0.95, 500)])
    return rng, m, p


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_learnable_problems_are_not_parked_on_thin_evidence(seed):
    """Static population, learnable problems down to p = 0.05, a budget of 5 groups per problem: at most 10% of
    the learnable problems end with a priority at or below the typical never-solved problem's."""
    rng, m, p = _static_population(seed)
    b, g = 50, 8
    sampler = PrioritizedPassSampler(m, seed=seed)
    visits = np.zeros(m, dtype=np.int64)
    for _ in range(5 * m // b):
        ids = sampler.sample(b)
        visits[ids] += 1
        sampler.observe(ids, (rng.random((b, g)) < p[ids, None]).astype(float))
    pri = sampler.priorities(np.arange(m))
    parked = pri[500:] <= np.median(pri[:250])
    assert parked.mean() <= 0.10
    assert visits[500:].min() >= 1


def test_the_papers_sampler_parks_learnable_problems_there():
    """The same population under the paper's sampler: many learnable problems sit in the unsolved pool."""
    rng, m, p = _static_population(0)
    b, g = 50, 8
    sampler = PrioritizedSampler(m, seed=0)
    for _ in range(5 * m // b):
        ids = sampler.sample(b)
        sampler.observe(ids, (rng.random((b, g)) < p[ids, None]).astype(float))
    unsolved = sampler._pools.status[500:] == 3
    assert unsolved.mean() > 0.10


def test_skipped_problems_regain_priority_as_evidence_decays():
    sampler = PrioritizedPassSampler(10, seed=0, decay=0.5)
    sampler.observe([0], [[0.0] * 8])
    before = sampler.priorities(np.array([0]))[0]
    sampler._pass.epoch += 3  # three passes later, without a new group
    after = sampler.priorities(np.array([0]))[0]
    assert after > before
    assert PrioritizedPassSampler(10, decay=1.0).priorities(np.array([0]))[0] == pytest.approx(1 - 2 / 9)


# ---------------------------------------------------------------------------- priorities
def test_informative_probability_matches_monte_carlo():
    rng = np.random.default_rng(0)
    for a, b, g in [(1.0, 1.0, 8), (2.0, 9.0, 8), (5.0, 3.0, 4), (1.0, 41.0, 8)]:
        p = rng.beta(a, b, size=400_000)
        mc = np.mean(1 - p**g - (1 - p) ** g)
        assert informative_probability(np.array([a]), np.array([b]), np.array([g]))[0] == pytest.approx(mc, abs=3e-3)
        assert scaled_variance(np.array([a]), np.array([b]))[0] == pytest.approx(4 * np.mean(p * (1 - p)), abs=3e-3)


def test_priority_table_of_the_docs():
    """docs/sampler.md's table of informative priorities (G = 8, decay 0.8)."""
    s = PrioritizedPassSampler(4, decay=0.8)
    assert s.priorities(np.array([0]))[0] == pytest.approx(0.78, abs=0.005)
    s.observe([0, 1, 2], [binary_group(0.0, 8), binary_group(1 / 8, 8), binary_group(0.5, 8)])
    assert s.priorities(np.array([0, 1, 2])) == pytest.approx([0.47, 0.73, 0.96], abs=0.005)
    for _ in range(80):  # always 0 of 8, once per pass
        s._pass.epoch += 1
        s.observe([3], [binary_group(0.0, 8)])
    assert s.priorities(np.array([3]))[0] == pytest.approx(0.16, abs=0.005)


def test_informative_priority_weighs_rare_successes_more_than_variance():
    # One success in a group of 8 (p ~ 0.1) against four (p ~ 0.5), as a share of the latter.
    s_inf, s_var = PrioritizedPassSampler(2), VariancePassSampler(2)
    for s in (s_inf, s_var):
        s.observe([0, 1], [binary_group(1 / 8, 8), binary_group(0.5, 8)])
    r_inf = s_inf.priorities(np.array([0]))[0] / s_inf.priorities(np.array([1]))[0]
    r_var = s_var.priorities(np.array([0]))[0] / s_var.priorities(np.array([1]))[0]
    assert r_inf > r_var


# ---------------------------------------------------------------------------- state
def test_state_dict_round_trip_continues_exactly():
    m, b = 120, 16
    a = PrioritizedPassSampler(m, seed=3, retest_fraction=0.1)
    probs = np.random.default_rng(0).uniform(size=m)
    run(a, 7, b, lambda t, i: binary_group(probs[i], 8))
    b_ = PrioritizedPassSampler(m, seed=99, retest_fraction=0.1)
    b_.load_state_dict(to_json_and_back(a.state_dict()))
    for _ in range(6):
        ids_a, ids_b = a.sample(b), b_.sample(b)
        assert ids_a == ids_b
        groups = [binary_group(probs[i], 8) for i in ids_a]
        a.observe(ids_a, groups)
        b_.observe(ids_b, groups)
    assert a.metrics() == b_.metrics()


def test_state_of_another_kind_or_size_is_refused():
    s = PrioritizedPassSampler(10)
    with pytest.raises(ValueError, match="PrioritizedSampler"):
        s.load_state_dict({**PrioritizedPassSampler(10).state_dict(), "kind": "PrioritizedSampler"})
    with pytest.raises(ValueError, match="for 11 problems"):
        s.load_state_dict(PrioritizedPassSampler(11).state_dict())
    with pytest.raises(ValueError, match="missing keys"):
        s.load_state_dict({"kind": "PrioritizedPassSampler"})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"candidates": 0.5}, "candidates must be in"),
        ({"selection_exponent": -1}, "selection_exponent must be in"),
        ({"floor": float("nan")}, "floor must be a number"),
        ({"decay": 1.5}, "decay must be in"),
        ({"retest_fraction": 2}, "retest_fraction must be in"),
        ({"candidates": "2"}, "candidates must be a number"),
    ],
)
def test_bad_options_name_themselves(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PrioritizedPassSampler(10, **kwargs)


def test_observe_validates_before_changing_anything():
    s = PrioritizedPassSampler(5)
    before = s.state_dict()
    with pytest.raises(ValueError, match="must be a group"):
        s.observe([0, 1], [0.5, 1.0])
    with pytest.raises(ValueError, match="out of range"):
        s.observe([7], [[1.0]])
    after = s.state_dict()
    assert np.array_equal(before["succ"], after["succ"]) and np.array_equal(before["fail"], after["fail"])
