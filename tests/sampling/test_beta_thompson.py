"""The beta estimator (posterior, forgetting, per-level empirical-Bayes prior), unseen problems competing
through the prior, Thompson selection, and their state."""

import numpy as np
import pytest
from sampling_helpers import binary_group, run, to_json_and_back

from priorl.sampling.experimental import ExperimentalPrioritizedSampler
from priorl.sampling.experimental.estimators import BetaEstimator
from priorl.sampling.experimental.priors import KAPPA_MAX, expected_variance
from priorl.statefile import load_state, save_state


def unseen_priority(sampler: ExperimentalPrioritizedSampler, levels: list, label) -> float:
    """Priority an unseen problem of level ``label`` has now."""
    pid = levels.index(label)
    a0, b0 = sampler._estimator.level_prior(sampler._levels[[pid]])
    return float(expected_variance(a0, b0)[0])


# ---------------------------------------------------------------------------- the posterior
def test_posterior_and_forgetting_on_known_inputs():
    est = BetaEstimator(2, decay=0.5, min_problems=100)  # too few problems for a fitted prior: Beta(1, 1)
    ids = np.array([0])
    p, prio = est.update(ids, np.array([0.5]), np.array([0.5]), np.array([4]))  # 2 of 4
    assert p[0] == 0.5 and prio[0] == pytest.approx(3 * 3 / (6 * 7))  # Beta(3, 3)
    p, prio = est.update(ids, np.array([1.0]), np.array([1.0]), np.array([4]))  # 4 of 4; old evidence halves
    assert est._s[0] == 5.0 and est._f[0] == 1.0
    assert p[0] == pytest.approx(6 / 8) and prio[0] == pytest.approx(6 * 2 / (8 * 9))  # Beta(6, 2)
    for _ in range(60):  # evidence saturates at G / (1 - decay) = 8 rollouts
        est.update(ids, np.array([1.0]), np.array([1.0]), np.array([4]))
    assert est._s[0] + est._f[0] == pytest.approx(8.0)
    assert est.posterior(ids)[0][0] == pytest.approx(9.0) and est.posterior(ids)[1][0] == pytest.approx(1.0)


def test_priority_stays_above_zero_and_one_group_does_not_park():
    s = ExperimentalPrioritizedSampler(4, estimator="beta", retest_every=None)
    s.observe([0, 1, 2, 3], [binary_group(0.0), binary_group(1.0), binary_group(0.5), binary_group(0.125)])
    assert (s._priority > 0).all()
    assert s.metrics()["active"] == 4 and s.metrics()["solved"] == s.metrics()["unsolved"] == 0
    # A threshold parks problems only on enough evidence: Beta(1, 1 + 8), (1, 1 + 12), (1, 1 + 14).
    t = ExperimentalPrioritizedSampler(1, estimator="beta", min_priority=0.06, retest_every=None)
    for expected in (0, 0, 1):
        t.observe([0], [binary_group(0.0)])
        assert t.metrics()["unsolved"] == expected


def test_nonbinary_rewards_are_fractional_successes():
    est = BetaEstimator(1, min_problems=100)
    p, prio = est.update(np.array([0]), np.array([0.5]), np.array([0.25]), np.array([2]))  # rewards [0.5, 0.5]
    assert p[0] == 0.5 and prio[0] == pytest.approx(2 * 2 / (4 * 5))  # m (1 - m), not the zero group variance


# ---------------------------------------------------------------------------- the prior
def test_prior_fit_recovers_a_known_beta_from_noisy_groups():
    """Method of moments with the binomial noise removed: Beta(2, 6) rates seen through groups of 8."""
    rng = np.random.default_rng(0)
    m, g = 4000, 8
    rates = rng.beta(2.0, 6.0, size=m)
    k = rng.binomial(g, rates)
    est = BetaEstimator(m, decay=0.5, min_problems=8)
    est.update(np.arange(m), k / g, k / g, np.full(m, g))
    a0, b0 = est.priors.pooled()
    assert a0 / (a0 + b0) == pytest.approx(0.25, abs=0.01)
    assert 6.0 < a0 + b0 < 10.5  # true 8; without the noise correction it would be about 3.5


def test_aged_prior_sums_follow_reobservation_exactly():
    """Running sums after many re-observations equal the aged sums recomputed from scratch."""
    rng = np.random.default_rng(1)
    m, half_life = 50, 3.0
    levels = rng.integers(0, 3, size=m)
    est = BetaEstimator(m, levels=levels, num_levels=3, decay=0.7, min_problems=3, prior_half_life=half_life)
    for now in range(80):  # long enough for the stored sums to be rebased (every 16 half-lives)
        ids = rng.choice(m, size=7, replace=False)
        k = rng.integers(0, 5, size=7)
        est.update(ids, k / 4, k / 4, np.full(7, 4), now=now)
    pri = est.priors
    assert pri._t_ref > 0
    n = est._s + est._f
    seen = n > 0
    p, h = est._s[seen] / n[seen], est._w2[seen] / n[seen] ** 2
    w = 0.5 ** ((now - pri._t[seen]) / half_life)
    scale = 0.5 ** ((now - pri._t_ref) / half_life)
    lv = levels[seen]
    for name, values in (("count", w), ("sum_p", w * p), ("sum_p2", w * p * p), ("sum_h", w * h)):
        expected = np.append(np.bincount(lv, weights=values, minlength=3), values.sum())
        np.testing.assert_allclose(getattr(pri, name) * scale, expected, rtol=1e-9, atol=1e-12)


def test_level_prior_is_refit_only_when_the_level_is_observed():
    est = BetaEstimator(40, levels=np.array([0] * 20 + [1] * 20), num_levels=2, min_problems=4, prior_half_life=5)
    est.update(np.arange(10), np.full(10, 0.25), np.full(10, 0.25), np.full(10, 8), now=0)
    est.update(np.arange(20, 30), np.full(10, 0.75), np.full(10, 0.75), np.full(10, 8), now=0)
    a_before, b_before = est.level_prior(np.array([0]))
    assert est.priors.own(np.array([0]))[0]
    est.update(np.array([25]), np.array([0.5]), np.array([0.5]), np.array([8]), now=100)  # level 1 only
    a_after, b_after = est.level_prior(np.array([0]))
    assert (a_after[0], b_after[0]) == (a_before[0], b_before[0])  # aged to almost nothing, but held
    assert est.priors.own(np.array([0]))[0]
    # Level 1 was refit at call 100: its 10 old problems weigh 2^-20 each, so it falls back to the pooled
    # prior, which is refit at every observation and, with its 20 old problems aged away too, is Beta(1, 1).
    assert not est.priors.own(np.array([1]))[0]
    a1, b1 = est.level_prior(np.array([1]))
    assert (a1[0], b1[0]) == (1.0, 1.0)


def test_fresh_sampler_gives_every_unseen_problem_beta_1_1():
    levels = ["a"] * 10 + ["b"] * 10
    s = ExperimentalPrioritizedSampler(20, estimator="beta", levels=levels)
    assert unseen_priority(s, levels, "a") == unseen_priority(s, levels, "b") == pytest.approx(1 / 6)


def test_solved_level_gets_an_unseen_priority_near_zero_and_a_fresh_level_the_pooled_prior():
    levels = ["easy"] * 60 + ["hard"] * 60 + ["new"] * 60
    s = ExperimentalPrioritizedSampler(180, estimator="beta", levels=levels, retest_every=None)
    s.observe(list(range(40)), [binary_group(1.0)] * 40)  # 40 easy problems, all solved
    s.observe(list(range(60, 100)), [binary_group(0.5)] * 40)  # 40 hard ones at one half
    easy = unseen_priority(s, levels, "easy")
    assert easy < 0.02
    # At strength KAPPA_MAX and mean (40 + 1/2) / 41 the prior's E[p(1-p)] is:
    mu = 40.5 / 41
    assert easy == pytest.approx(mu * (1 - mu) * KAPPA_MAX / (KAPPA_MAX + 1))
    assert unseen_priority(s, levels, "hard") > 0.24  # homogeneous at 1/2: a strong prior near 0.25
    # "new" has no observed problem: it uses the prior pooled over all 80, half solved, half at 1/2.
    pooled = s._estimator.priors.pooled()
    assert unseen_priority(s, levels, "new") == pytest.approx(float(expected_variance(*map(np.array, pooled))))
    assert easy < unseen_priority(s, levels, "new") < unseen_priority(s, levels, "hard")


def test_unseen_problems_of_a_solved_level_stop_being_picked_in_the_first_pass():
    m, b, steps = 200, 10, 15
    levels = [i % 2 for i in range(m)]  # level 0: always solved; level 1: solved half the time

    def reward(t, i):
        return binary_group(1.0 if i % 2 == 0 else 0.5)

    def easy_picks(**kwargs):
        s = ExperimentalPrioritizedSampler(m, seed=0, levels=levels, retest_every=None, **kwargs)
        return sum(i % 2 == 0 for ids in run(s, steps, b, reward) for i in ids)

    assert easy_picks() == pytest.approx(75, abs=15)  # "last": the unseen phase is uniform over levels
    assert easy_picks(estimator="beta") <= 10  # beta: once its prior is fit, the solved level stops
    assert easy_picks(estimator="beta", selection="thompson") <= 12


def test_levels_none_pools_everything_and_labels_may_be_any_hashable():
    s = ExperimentalPrioritizedSampler(6, estimator="beta", levels=[None, "x", 3, None, "x", 3])
    assert s._estimator.priors.num_levels == 3
    assert ExperimentalPrioritizedSampler(6, estimator="beta")._estimator.priors.num_levels == 1


# ---------------------------------------------------------------------------- Thompson
def test_thompson_is_seeded_and_differs_from_greedy():
    rng = np.random.default_rng(0)
    m = 300
    success = rng.choice([0.125, 0.25, 0.5, 0.75, 0.875], size=m)

    def reward(t, i):
        return binary_group(success[i])

    def batches(seed, selection):
        s = ExperimentalPrioritizedSampler(
            m, seed=seed, estimator="beta", selection=selection, levels=[i % 4 for i in range(m)]
        )
        return run(s, 25, 16, reward)

    a = batches(1, "thompson")
    assert a == batches(1, "thompson")
    assert a != batches(2, "thompson")
    assert a != batches(1, "greedy")
    assert all(len(set(ids)) == 16 for ids in a)


def test_thompson_with_one_candidate_per_slot_picks_the_greedy_set():
    m = 40
    rewards = [binary_group(p) for p in np.linspace(0, 1, 9)] * 5
    g = ExperimentalPrioritizedSampler(m, estimator="beta", retest_every=None)
    t = ExperimentalPrioritizedSampler(
        m, estimator="beta", selection="thompson", thompson_candidates=1, retest_every=None
    )
    for s in (g, t):
        s.observe(list(range(m)), rewards[:m])
    assert sorted(g.sample(10)) == sorted(t.sample(10))


# ---------------------------------------------------------------------------- state
@pytest.mark.parametrize("selection", ["greedy", "thompson"])
def test_state_round_trip_continues_exactly(tmp_path, selection):
    m, b = 60, 7
    rng = np.random.default_rng(0)
    success = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], size=m)
    levels = [f"L{i % 4}" for i in range(m)]

    def reward(t, i):
        return binary_group(success[i] if (t + i) % 3 else 1 - success[i], 4)

    kwargs = dict(estimator="beta", selection=selection, levels=levels, prior_min_problems=3, retest_fraction=0.1)
    a = ExperimentalPrioritizedSampler(m, seed=5, **kwargs)
    run(a, 6, b, reward)  # part of the problems still unseen: the queues are part of the state
    a.sample(b)  # a batch awaiting its rewards too
    save_state(tmp_path, "s", a.state_dict())
    for state in (to_json_and_back(a.state_dict()), load_state(tmp_path, "s")):
        c = ExperimentalPrioritizedSampler(m, seed=99, **kwargs)
        c.load_state_dict(state)
        assert c.metrics() == a.metrics()
        ref = ExperimentalPrioritizedSampler(m, seed=5, **kwargs)
        ref.load_state_dict(a.state_dict())
        assert run(c, 15, b, reward) == run(ref, 15, b, reward)


def test_loading_a_state_of_another_beta_configuration_raises():
    levels = [i % 2 for i in range(10)]
    state = ExperimentalPrioritizedSampler(10, estimator="beta", levels=levels).state_dict()
    with pytest.raises(ValueError, match="estimator"):
        ExperimentalPrioritizedSampler(10, estimator="beta", levels=levels, beta_decay=0.8).load_state_dict(state)
    with pytest.raises(ValueError, match="estimator"):
        ExperimentalPrioritizedSampler(10, estimator="last").load_state_dict(state)
    with pytest.raises(ValueError, match="levels"):
        ExperimentalPrioritizedSampler(10, estimator="beta", levels=[i % 3 == 0 for i in range(10)]).load_state_dict(
            state
        )


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"estimator": "beta", "beta_decay": 1.5}, "beta_decay"),
        ({"estimator": "beta", "beta_decay": -0.1}, "beta_decay"),
        ({"estimator": "beta", "beta_decay": "half"}, "beta_decay"),
        ({"estimator": "beta", "prior_min_problems": 0}, "prior_min_problems"),
        ({"estimator": "beta", "prior_half_life": 0}, "prior_half_life"),
        ({"estimator": "beta", "prior_half_life": float("inf")}, "prior_half_life"),
        ({"estimator": "beta", "selection": "thompson", "thompson_candidates": 0}, "thompson_candidates"),
        ({"estimator": "last", "selection": "thompson"}, "needs estimator 'beta'"),
        ({"estimator": "beta", "selection": "stochastic"}, "not available with estimator 'beta'"),
        ({"estimator": "beta", "levels": [1, 2]}, "levels has 2 labels"),
        ({"estimator": "beta", "levels": [[1]] * 5}, "position 0 is not hashable"),
        ({"estimator": "beta", "levels": "abcde"}, "string"),
    ],
)
def test_bad_beta_and_thompson_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ExperimentalPrioritizedSampler(5, **kwargs)
