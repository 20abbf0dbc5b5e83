"""PrioritizedSampler: distinct batches, greedy selection, unseen order, starvation bound, state, errors."""

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sampling_helpers import binary_group, run, to_json_and_back

from priorl import PrioritizedSampler
from priorl.sampling.experimental import ExperimentalPrioritizedSampler
from priorl.sampling.pools import ACTIVE, SOLVED, UNSOLVED


def observe_all(sampler: PrioritizedSampler, success: np.ndarray, g: int = 8) -> None:
    sampler.observe(list(range(sampler.num_problems)), [binary_group(p, g) for p in success])


# ---------------------------------------------------------------------------- selection
@given(
    m=st.integers(1, 60),
    b_frac=st.floats(0.01, 1.0),
    steps=st.integers(1, 15),
    seed=st.integers(0, 3),
    selection=st.sampled_from(["greedy", "stochastic"]),
    retest_fraction=st.sampled_from([0.0, 0.2]),
    data=st.data(),
)
def test_batch_never_repeats_an_id(m, b_frac, steps, seed, selection, retest_fraction, data):
    b = max(1, int(b_frac * m))
    sampler = ExperimentalPrioritizedSampler(m, seed=seed, selection=selection, retest_fraction=retest_fraction)
    probs = data.draw(st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0]), min_size=m, max_size=m))
    for ids in run(sampler, steps, b, lambda t, i: binary_group(probs[i], 4)):
        assert len(ids) == b == len(set(ids))
        assert all(0 <= i < m for i in ids)


def test_unseen_problems_come_first_in_seeded_random_order():
    m, b = 100, 16
    a = PrioritizedSampler(m, seed=3)
    first = run(a, math.ceil(m / b), b, lambda t, i: binary_group(0.5))
    flat = [i for batch in first for i in batch]
    assert sorted(flat[:m]) == list(range(m))  # every problem once before any repeats
    assert flat[:m] != sorted(flat[:m])  # shuffled
    again = run(PrioritizedSampler(m, seed=3), math.ceil(m / b), b, lambda t, i: binary_group(0.5))
    assert again == first  # seeded
    other = run(PrioritizedSampler(m, seed=4), math.ceil(m / b), b, lambda t, i: binary_group(0.5))
    assert other != first


@given(
    success=st.lists(st.sampled_from([0.0, 0.125, 0.25, 0.5, 0.75, 0.875, 1.0]), min_size=2, max_size=50),
    b_frac=st.floats(0.0, 1.0),
)
def test_greedy_returns_highest_priority_available_problems(success, b_frac):
    m = len(success)
    sampler = PrioritizedSampler(m, retest_every=None)
    observe_all(sampler, np.array(success))
    priority = np.array([p * (1 - p) for p in success])
    active = [i for i in range(m) if priority[i] > 0]
    b = max(1, int(b_frac * m))
    ids = sampler.sample(b)
    # Reference: active problems by priority (ties: lowest id, as none was sampled yet), then the
    # pools in recency order (here: observation order, i.e. by id) once the active ones run out.
    ref = sorted(active, key=lambda i: (-priority[i], i))
    rest = [i for i in range(m) if i not in active]
    assert ids == (ref + rest)[:b]


def test_ties_go_to_least_recently_sampled():
    m = 6
    sampler = PrioritizedSampler(m, retest_every=None)
    first = sampler.sample(6)  # unseen phase, in a random order
    sampler.observe(first, [binary_group(0.5)] * 6)  # all tie at 0.25
    assert sampler.sample(3) == first[:3]


def test_solved_and_unsolved_leave_the_heap_and_are_retested():
    m, b = 40, 8
    sampler = PrioritizedSampler(m, retest_every=4)
    success = np.array([1.0] * 10 + [0.0] * 10 + [0.5] * 20)
    run(sampler, 5, b, lambda t, i: binary_group(success[i]))  # the unseen phase and one retest batch
    metrics = sampler.metrics()
    assert metrics["solved"] == 10 and metrics["unsolved"] == 10
    assert metrics["active"] + metrics["unseen"] == 20
    assert sampler._pools.status[0] == SOLVED and sampler._pools.status[15] == UNSOLVED
    assert sampler._pools.status[25] == ACTIVE
    # Ordinary batches only take active problems; a retest batch reaches the pools.
    seen_in_pools = set()
    for _ in range(40):
        ids = sampler.sample(b)
        if sampler.metrics()["retest_batch"]:
            seen_in_pools |= {i for i in ids if i < 20}
        else:
            assert all(i >= 20 for i in ids)
        sampler.observe(ids, [binary_group(success[i]) for i in ids])
    assert seen_in_pools == set(range(20))


def test_forgetting_and_breakthroughs_are_counted():
    sampler = PrioritizedSampler(4, retest_every=None)
    sampler.observe([0, 1, 2, 3], [binary_group(1.0), binary_group(0.0), binary_group(1.0), binary_group(0.5)])
    sampler.observe([0, 1], [binary_group(0.5), binary_group(0.25)])
    m = sampler.metrics()
    assert (m["forgetting"], m["breakthroughs"]) == (1, 1)
    sampler.observe([2], [binary_group(1.0)])
    m = sampler.metrics()
    assert (m["forgetting"], m["breakthroughs"], m["forgetting_total"], m["breakthroughs_total"]) == (
        0,
        0,
        1,
        1,
    )
    assert (m["solved"], m["unsolved"], m["active"], m["unseen"]) == (1, 0, 3, 0)


def test_metrics_report_batch_priority_and_informative_fraction():
    sampler = PrioritizedSampler(4, retest_every=None)
    sampler.observe([0, 1, 2, 3], [binary_group(0.5), binary_group(0.25), binary_group(1.0), binary_group(0.0)])
    assert sampler.metrics()["informative_fraction"] == 0.5
    sampler.sample(2)
    m = sampler.metrics()
    assert m["batch_mean_priority"] == pytest.approx((0.25 + 0.1875) / 2)
    assert m["awaiting"] == 2 and m["heap_size"] == 0


def test_problem_sampled_but_never_observed_comes_back():
    sampler = PrioritizedSampler(10, retest_every=None, retest_fraction=0.1)
    sampler.sample(10)  # nothing observed
    seen = set()
    for _ in range(12):
        seen |= set(sampler.sample(3))
    assert seen == set(range(10))


# ---------------------------------------------------------------------------- starvation
@given(
    m=st.integers(2, 60),
    b_frac=st.floats(0.02, 0.5),
    retest=st.sampled_from([(3, 0.0), (None, 0.1), (5, 0.05), (1, 0.0), (None, 0.5)]),
    mode=st.sampled_from([("last", "greedy"), ("last", "stochastic"), ("beta", "greedy"), ("beta", "thompson")]),
    data=st.data(),
)
def test_starvation_bound_holds_for_any_reward_sequence(m, b_frac, retest, mode, data):
    retest_every, fraction = retest
    estimator, selection = mode
    b = max(1, int(b_frac * m))
    levels = data.draw(st.lists(st.integers(0, 2), min_size=m, max_size=m)) if estimator == "beta" else None
    if mode == ("last", "greedy"):  # the paper's form: the heap sampler itself
        sampler = PrioritizedSampler(m, retest_every=retest_every, retest_fraction=fraction)
    else:
        sampler = ExperimentalPrioritizedSampler(
            m,
            retest_every=retest_every,
            retest_fraction=fraction,
            estimator=estimator,
            selection=selection,
            levels=levels,
            prior_min_problems=2,
        )
    bound = sampler.starvation_bound(b)
    assert bound is not None
    # Adversarial rewards: drawn by hypothesis per (step, problem), e.g. a few problems kept at
    # maximal variance forever while the rest always fail.
    favourites = data.draw(st.sets(st.integers(0, m - 1), max_size=m))
    noise = data.draw(st.lists(st.sampled_from([0.0, 0.5, 1.0]), min_size=m, max_size=m))

    def reward(t, i):
        return binary_group(0.5 if i in favourites else noise[(i + t) % m], 4)

    steps = 3 * bound
    last = np.zeros(m, dtype=np.int64)  # "sampled at call 0" = the start
    worst = 0
    for t, ids in enumerate(run(sampler, steps, b, reward), start=1):
        for i in ids:
            worst = max(worst, t - last[i])
            last[i] = t
    worst = max(worst, int((steps - last).max()))  # problems still waiting at the end
    assert worst <= bound


def test_starvation_bound_formula():
    assert PrioritizedSampler(1000, retest_every=None, retest_fraction=0.1).starvation_bound(100) == 10 + 100
    assert PrioritizedSampler(1000, retest_every=10).starvation_bound(100) == 10 + 100
    assert PrioritizedSampler(1000, retest_every=None).starvation_bound(100) is None
    # The beta estimator has no unseen phase: retests reach never-sampled problems first.
    assert ExperimentalPrioritizedSampler(1000, retest_every=10, estimator="beta").starvation_bound(100) == 100
    assert ExperimentalPrioritizedSampler(1000, retest_every=None, estimator="beta").starvation_bound(100) is None


def test_without_retests_low_priority_problems_starve():
    """The reason for retesting: greedy selection alone never returns to a zero-priority problem."""
    m = 20
    sampler = PrioritizedSampler(m, retest_every=None)
    run(sampler, 100, 5, lambda t, i: binary_group(1.0 if i < 5 else 0.5))
    counts = np.zeros(m)
    for ids in run(sampler, 50, 5, lambda t, i: binary_group(1.0 if i < 5 else 0.5)):
        counts[ids] += 1
    assert counts[:5].sum() == 0


# ---------------------------------------------------------------------------- state
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"selection": "stochastic", "selection_exponent": 0.7, "floor": 0.05},
        {"estimator": "ema", "min_priority": 0.01, "retest_fraction": 0.2},
        {"estimator": "window", "window": 3, "retest_every": None, "retest_fraction": 0.1},
    ],
)
def test_state_round_trip_continues_exactly(kwargs):
    m, b = 50, 7
    rng = np.random.default_rng(0)
    success = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], size=m)

    def reward(t, i):
        return binary_group(success[i] if (t + i) % 3 else 1 - success[i], 4)

    make = ExperimentalPrioritizedSampler if kwargs else PrioritizedSampler  # another estimator or selection
    a = make(m, seed=5, **kwargs)
    run(a, 12, b, reward)
    a.sample(b)  # a batch awaiting its rewards is part of the state too
    state = to_json_and_back(a.state_dict())
    b_ = make(m, seed=99, **kwargs)
    b_.load_state_dict(state)
    assert b_.metrics() == a.metrics()
    assert run(b_, 20, b, reward) == run(a, 20, b, reward)


def test_loading_a_state_of_another_size_raises():
    state = PrioritizedSampler(10).state_dict()
    with pytest.raises(ValueError, match="10 problems"):
        PrioritizedSampler(11).load_state_dict(state)
    with pytest.raises(ValueError, match="estimator"):
        ExperimentalPrioritizedSampler(10, estimator="ema").load_state_dict(state)
    del state["priority"]
    with pytest.raises(ValueError, match="missing keys"):
        PrioritizedSampler(10).load_state_dict(state)


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda s: s.sample(11), "larger than the dataset"),
        (lambda s: s.sample(0), ">= 1"),
        (lambda s: s.sample(2.5), "must be an int"),
        (lambda s: s.observe([10], [[1.0]]), "out of range"),
        (lambda s: s.observe([-1], [[1.0]]), "out of range"),
        (lambda s: s.observe([1.5], [[1.0]]), "not an int"),
        (lambda s: s.observe([1], [[]]), "empty reward group"),
        (lambda s: s.observe([1, 2], [[1.0], []]), "empty reward group for problem 2"),
        (lambda s: s.observe([1], [[float("nan")]]), "NaN"),
        (lambda s: s.observe([1, 3], [[0.0, 1.0], [1.0, 1.5]]), "1.5 for problem 3"),
        (lambda s: s.observe([1], [[-0.1]]), "-0.1"),
        (lambda s: s.observe([1, 2], [[1.0]]), "2 problem ids but 1 reward groups"),
        (lambda s: s.observe([1], [["x"]]), "not numbers"),
    ],
)
def test_bad_input_raises_and_changes_nothing(call, match):
    s = PrioritizedSampler(10)
    s.observe([0], [[0.0, 1.0]])
    before = to_json_and_back(s.state_dict())
    with pytest.raises(ValueError, match=match):
        call(s)
    after = s.state_dict()
    assert json.dumps(to_json_and_back(after), default=str) == json.dumps(before, default=str)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_problems": 0},
        {"num_problems": 5, "retest_every": 0},
        {"num_problems": 5, "retest_fraction": 1.5},
        {"num_problems": 5, "estimator": "median"},
        {"num_problems": 5, "selection": "softmax"},
        {"num_problems": 5, "estimator": "ema", "ema_decay": 0.0},
        {"num_problems": 5, "selection": "stochastic", "selection_exponent": -1.0},
        {"num_problems": 5, "min_priority": -0.1},
    ],
)
def test_bad_configuration_raises(kwargs):
    with pytest.raises(ValueError):
        ExperimentalPrioritizedSampler(**kwargs)  # the heap sampler's checks, and the variants'
    main = {k: v for k, v in kwargs.items() if k in ("num_problems", "retest_every", "retest_fraction", "min_priority")}
    if main == kwargs:
        with pytest.raises(ValueError):
            PrioritizedSampler(**kwargs)
    else:  # an option of the variants only: not an argument of the paper's heap sampler
        with pytest.raises(TypeError):
            PrioritizedSampler(**kwargs)


def test_nonbinary_rewards_use_group_variance():
    s = PrioritizedSampler(3, retest_every=None)
    s.observe([0, 1, 2], [[0.2, 0.4], [0.5, 0.5], [0.9, 0.1]])
    assert s._priority[0] == pytest.approx(0.01)
    assert s._priority[1] == 0.0 and s._pools.status[1] == SOLVED  # constant 0.5: no gradient
    assert s._priority[2] == pytest.approx(0.16)
    assert s.sample(1) == [2]
