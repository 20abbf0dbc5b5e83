"""The study's statistics on synthetic curves with known answers: crossings off the seed-mean curve, the paired
bootstrap ratio, BCa coverage, censoring, and the tuning criterion."""

import math

import numpy as np
import pytest

from priorl.study import stats

X = stats.grid(1000, 10)  # 0, 100, ..., 1000


def linear(slopes, x=X, offset=0.0):
    """Curves acc = offset + slope * x / 1000 per seed, tokens = 2 per completion, wall = 0.01 s per completion."""
    acc = np.array([offset + s * x / 1000 for s in slopes])
    return stats.Curves(x, acc, np.tile(2.0 * x, (len(slopes), 1)), np.tile(0.01 * x, (len(slopes), 1)),
                        list(range(len(slopes))))  # fmt: skip


def test_first_crossing_interpolates_and_censors():
    y = np.array([0.1, 0.3, 0.5, 0.7])
    x = np.array([0.0, 10.0, 20.0, 30.0])
    assert stats.first_crossing(x, y, 0.4) == pytest.approx(15.0)
    assert stats.first_crossing(x, y, 0.05) == 0.0
    assert math.isinf(stats.first_crossing(x, y, 0.8))


def test_completions_are_read_off_the_seed_mean_curve_not_each_seed():
    # two seeds: one jumps to 1 at 100, the other at 900. The mean curve is 0.5 from 100 to 800 and 1 at 900, so
    # it reaches 0.75 at 850; the mean of the seeds' own first crossings would say 500.
    acc = np.zeros((2, len(X)))
    acc[0, 1:] = 1.0
    acc[1, 9:] = 1.0
    c = stats.Curves(X, acc, np.tile(X, (2, 1)), np.tile(X, (2, 1)), [0, 1])
    out = stats.to_target(c, 0.75, rng=np.random.default_rng(0))
    assert out["mean"] == pytest.approx(850)
    assert out["reached"] == 1.0 and not out["censored"]


def test_identical_seeds_give_the_known_answer_with_a_zero_width_interval():
    a, b = linear([0.8] * 5), linear([0.4] * 5)  # a reaches 0.2 at 250, b at 500
    t = stats.to_target(a, 0.2, rng=np.random.default_rng(0))
    assert t["mean"] == pytest.approx(250) and t["ci95"] == [pytest.approx(250), pytest.approx(250)]
    r = stats.ratio_to_baseline(a, b, 0.2, rng=np.random.default_rng(0))
    for what in ("completions", "tokens", "wall"):
        assert r[what]["mean"] == pytest.approx(0.5)
        assert r[what]["ci95"] == [pytest.approx(0.5), pytest.approx(0.5)]


def test_the_ratio_is_paired_over_seeds():
    # a seed's difficulty is shared by both presets (slope scales with it); preset a is always 2x as fast. Paired,
    # the ratio is exactly 0.5 in every replicate; unpaired it would vary with which seeds each replicate drew.
    rng = np.random.default_rng(1)
    hard = rng.uniform(0.3, 1.0, size=8)
    a, b = linear(2 * hard), linear(hard)
    r = stats.ratio_to_baseline(a, b, 0.25, rng=np.random.default_rng(0))
    lo, hi = r["completions"]["ci95"]
    assert r["completions"]["mean"] == pytest.approx(0.5, rel=0.02) and hi - lo < 0.05
    # while the completions to the target themselves vary a lot from seed to seed
    t = stats.to_target(b, 0.25, rng=np.random.default_rng(0))
    assert t["ci95"][1] - t["ci95"][0] > 100


def test_bca_interval_covers_a_known_mean():
    # completions to 0.5 on curves acc = x/(2*T_s) with T_s ~ N(500, 60): the mean curve crosses at the harmonic-ish
    # mean of T_s; check the interval covers the population's crossing about 95% of the time.
    truth_rng = np.random.default_rng(7)
    big = truth_rng.normal(500, 60, size=200_000)
    x = np.linspace(0, 2000, 201)
    truth = stats.first_crossing(x, np.mean([np.minimum(x / (2 * t), 1.0) for t in big[:4000]], axis=0), 0.5)
    hits, n = 0, 120
    rng = np.random.default_rng(3)
    for _ in range(n):
        ts = rng.normal(500, 60, size=10)
        acc = np.array([np.minimum(x / (2 * t), 1.0) for t in ts])
        c = stats.Curves(x, acc, np.tile(x, (10, 1)), np.tile(x, (10, 1)), list(range(10)))
        lo, hi = stats.to_target(c, 0.5, n_boot=800, rng=rng)["ci95"]
        hits += lo <= truth <= hi
    assert 0.85 <= hits / n <= 1.0


def test_a_preset_that_never_reaches_the_target_is_censored():
    slow, fast = linear([0.1] * 4), linear([0.8] * 4)  # slow ends at 0.1
    t = stats.to_target(slow, 0.5, rng=np.random.default_rng(0))
    assert t["mean"] is None and t["censored"] and t["reached"] == 0.0 and t["ci95"] == [None, None]
    r = stats.ratio_to_baseline(slow, fast, 0.5, rng=np.random.default_rng(0))
    assert r["completions"]["mean"] is None and r["completions"]["ci95"][1] is None  # beyond the budget
    r = stats.ratio_to_baseline(fast, slow, 0.5, rng=np.random.default_rng(0))
    # the baseline never gets there: counted at the budget (1000), an upper bound on the ratio (625 / 1000)
    assert r["completions"]["mean"] == pytest.approx(0.625) and r["completions"]["upper_bound"]
    both = stats.ratio_to_baseline(slow, slow, 0.5, rng=np.random.default_rng(0))
    assert both["completions"]["mean"] is None and both["completions"]["undefined"] == 1.0


def test_some_seeds_censored_counts_the_share_that_reached():
    c = linear([0.8, 0.8, 0.1, 0.1])  # mean slope 0.45: crosses 0.3 at 667; half the seeds ever get to 0.3
    t = stats.to_target(c, 0.3, rng=np.random.default_rng(0))
    assert t["mean"] == pytest.approx(1000 * 0.3 / 0.45) and t["reached"] == 0.5
    assert t["ci95"][1] is None  # some replicates draw only the slow seeds: beyond the budget


def test_one_seed_has_no_interval():
    t = stats.to_target(linear([0.5]), 0.25, rng=np.random.default_rng(0))
    assert t["mean"] == pytest.approx(500) and t["ci95"] is None and "one seed" in t["method"]


def test_criterion_ranks_reached_first_then_fewer_completions_then_area():
    target = 0.3
    fast, slow, never = (stats.criterion(linear([s] * 2), target) for s in (0.9, 0.5, 0.2))
    assert never["completions"] is None
    assert sorted([never, slow, fast], key=stats.rank_key) == [fast, slow, never]
    high = stats.criterion(linear([0.2] * 2, offset=0.05), target)
    assert sorted([never, high], key=stats.rank_key)[0] is high  # both censored: the larger area wins


def test_run_curves_use_training_time_and_trained_tokens():
    evals = [{"rollouts_generated": 0, "accuracy": 0.1}, {"rollouts_generated": 100, "accuracy": 0.5}]
    metrics = [{"rollouts_generated": 50, "tokens_trained": 10, "time/step": 1.0},
               {"rollouts_generated": 100, "tokens_trained": 30, "time/step": 3.0}]  # fmt: skip
    acc, tok, sec = stats.run_curves(np.array([0.0, 50.0, 100.0]), evals, metrics)
    assert acc.tolist() == pytest.approx([0.1, 0.3, 0.5])
    assert tok.tolist() == [0.0, 10.0, 40.0] and sec.tolist() == [0.0, 1.0, 4.0]


def test_t_interval_of_final_accuracy():
    from priorl.study.stats import t_interval

    lo, hi = t_interval([0.5, 0.6, 0.7])
    assert (lo + hi) / 2 == pytest.approx(0.6) and hi - lo == pytest.approx(2 * 4.303 * 0.1 / 3**0.5)
    assert t_interval([0.5]) is None
    assert t_interval([0.99, 1.0, 0.95])[1] == 1.0  # an accuracy's interval stops at 100%


def test_the_primary_target_with_gain_or_absolute_targets():
    from priorl.study.runner import primary_target

    assert primary_target({"0.5": 0.6, "0.75": 0.8, "0.9": 0.92}) == "0.9"
    assert primary_target({"0.6217": 0.6217, "0.9196": 0.9196, "0.8081": 0.8081}) == "0.9196"  # absolute: highest
    assert primary_target({}) is None


def test_a_censored_baseline_gives_an_upper_bound_not_zero():
    # the preset reaches 0.5 at 500 completions; grpo (slope 0.4) never does within the budget of 1000: counted at
    # the budget, the ratio is at most 0.5, and says it is a bound (it used to read 0.00x)
    fast, slow = linear([1.0, 1.0, 1.0]), linear([0.4, 0.4, 0.4])
    r = stats.ratio_to_baseline(fast, slow, 0.5, rng=np.random.default_rng(0))
    assert r["completions"]["mean"] == pytest.approx(0.5) and r["completions"]["upper_bound"] is True
    assert r["tokens"]["mean"] == pytest.approx(0.5) and r["wall"]["mean"] == pytest.approx(0.5)
    assert stats.ratio_to_baseline(fast, fast, 0.5, rng=np.random.default_rng(0))["completions"]["upper_bound"] is False
    from priorl.study.report import fmt_ratio

    assert fmt_ratio(r["completions"]).startswith("<= 0.50x")
