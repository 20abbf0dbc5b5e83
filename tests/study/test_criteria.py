"""Tuning criteria that one lucky seed cannot win (issue 42), on synthetic tuning curves with a known unstable cell;
the plan's default tuning seeds, its schedule, and the parts it says cannot act (issue 40)."""

import numpy as np
import pytest

from priorl.study import make_plan
from priorl.study.plan import instability_flags
from priorl.study.stats import Curves, collapsed, criterion, rank_key

X = np.linspace(0, 10_000, 11)


def curve(*points: float) -> np.ndarray:
    return np.array(points, dtype=float)


# A steady rate: every seed reaches 0.8 at 6,000 completions.
STEADY = [curve(0, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 0.85, 0.9, 0.9, 0.9) for _ in range(3)]
# A fast rate that collapses on its third seed: two seeds reach 0.8 at 3,000, the third falls to 0.1.
FAST = [curve(0, .3, .6, .8, .9, .9, .9, .9, .9, .9, .9), curve(0, .3, .6, .8, .9, .9, .9, .9, .9, .9, .9),
        curve(0, .3, .5, .5, .3, .2, .1, .1, .1, .1, .1)]  # fmt: skip


def curves(rows) -> Curves:
    acc = np.array(rows)
    return Curves(X, acc, np.zeros_like(acc), np.zeros_like(acc), list(range(len(rows))))


def test_collapse_is_a_final_far_below_the_run_own_best():
    assert collapsed(FAST[2]) and not collapsed(FAST[0]) and not collapsed(STEADY[0])
    assert not collapsed(curve(0, 0.5, 0.55, 0.5))  # a wobble of 5 points is not a collapse


def test_the_mean_criterion_picks_the_lucky_fast_cell_and_the_worst_seed_criterion_does_not():
    target = 0.6  # the seed-mean of FAST crosses it near 2,200; its third seed never reaches it
    steady, fast = curves(STEADY), curves(FAST)
    mean = {name: criterion(c, target, "mean") for name, c in (("steady", steady), ("fast", fast))}
    worst = {name: criterion(c, target, "worst") for name, c in (("steady", steady), ("fast", fast))}
    assert min(mean, key=lambda n: rank_key(mean[n])) == "fast"  # its seed-mean curve crosses first
    assert min(worst, key=lambda n: rank_key(worst[n])) == "steady"
    assert worst["fast"]["completions"] is None and worst["fast"]["censored"] == 1
    assert worst["fast"]["mean_completions"] == mean["fast"]["completions"] < worst["steady"]["completions"]
    assert worst["fast"]["collapsed"] == 1 and worst["steady"]["collapsed"] == 0
    at_08 = criterion(fast, 0.8, "worst")
    assert at_08["completions"] is None and at_08["censored"] == 1 and at_08["per_seed"][:2] == [3000.0, 3000.0]


def test_worst_criterion_orders_unreached_cells_by_censored_seeds_then_the_mean():
    a = {"criterion": "worst", "completions": None, "censored": 2, "mean_completions": None, "auc": 0.9}
    b = {"criterion": "worst", "completions": None, "censored": 1, "mean_completions": 8000.0, "auc": 0.1}
    assert min([a, b], key=rank_key) is b
    # the mean criterion keeps its original order: reached, completions, then area
    c = {"criterion": "mean", "completions": None, "censored": 2, "auc": 0.9}
    d = {"criterion": "mean", "completions": None, "censored": 0, "auc": 0.1}
    assert min([c, d], key=rank_key) is c


def test_a_choice_whose_next_higher_rate_collapsed_is_flagged():
    grid = {"train.lr": [1e-4, 2e-4, 4e-4]}
    rows = [
        {"cell": {"train.lr": 1e-4}, "collapsed": 0, "seeds_ok": 3},
        {"cell": {"train.lr": 2e-4}, "collapsed": 0, "seeds_ok": 3},
        {"cell": {"train.lr": 4e-4}, "collapsed": 1, "seeds_ok": 3},
    ]
    (flag,) = instability_flags(grid, {"train.lr": 2e-4}, rows)
    assert "next to instability" in flag and "0.0004" in flag and "1 of 3" in flag
    assert instability_flags(grid, {"train.lr": 1e-4}, rows) == []  # its neighbour above is stable
    assert instability_flags(grid, {"train.lr": 4e-4}, rows) == []  # nothing above the largest


def test_unknown_criterion_is_refused():
    with pytest.raises(ValueError, match="criterion 'best'"):
        criterion(curves(STEADY), 0.5, "best")


BASE = {
    "model": {"path": "builtin:tiny-arith"},
    "data": {"train": "builtin:arithmetic"},
    "train": {"batch_size": 4},
    "generation": {"group_size": 4},
}


def test_a_grid_without_tuning_seeds_tunes_on_three_and_says_so(tmp_path):
    plan = make_plan(dict(BASE), presets=["grpo"], seeds=[0, 1], budget=256, out=tmp_path, eval_points=4,
                     grid={"train.lr": [1e-5, 1e-4]})  # fmt: skip
    assert plan.tune_seeds == [100, 101, 102]
    assert any("three seeds, 100-102" in n for n in plan.notes)
    assert "--criterion mean" in plan.describe()


def test_the_plan_prints_the_evaluations_that_will_run(tmp_path):
    # 256 completions at 16 a step: 16 steps; 32 points asked, one evaluation a step at most.
    plan = make_plan(dict(BASE), presets=["grpo"], seeds=[0], budget=256, out=tmp_path, eval_points=32)
    assert plan.schedule["grpo"] == (16, 17)
    assert "16 training steps; 17 evaluations" in plan.describe() and "fewer than the 33 asked" in plan.describe()
    plan = make_plan(dict(BASE), presets=["grpo"], seeds=[0], budget=256, out=tmp_path, eval_points=4)
    assert plan.schedule["grpo"] == (16, 5) and "fewer than" not in plan.describe()


def test_the_plan_says_how_often_a_run_visits_each_problem(tmp_path):
    # 16 steps of 4 problems over builtin:arithmetic:n=32 (its validation auto split keeps the training pool).
    base = {**BASE, "data": {"train": "builtin:arithmetic:n=32"}}
    plan = make_plan(base, presets=["grpo"], seeds=[0], budget=256, out=tmp_path, eval_points=4)
    draws, pool = plan.visits["grpo"]
    assert draws == 64 and pool == 32
    assert "64 problem draws a run over 32 training problems, 2 visits per problem" in plan.describe()


def test_replay_that_cannot_start_within_the_budget_is_named_and_refused(tmp_path):
    from priorl.study import run_study

    base = {**BASE, "replay": {"kind": "adv-replay", "warmup_steps": 10}}
    plan = make_plan(base, presets=["grpo", "adv-replay"], seeds=[0], budget=64, out=tmp_path, eval_points=4)
    (why,) = plan.inactive["adv-replay"]
    assert "replay.warmup_steps is 10" in why and "a budget above 160 completions" in why
    assert "will not act (adv-replay)" in plan.describe() and "grpo" not in plan.inactive
    with pytest.raises(ValueError, match="--allow-inactive"):
        run_study(plan)
    assert not (tmp_path / "study.json").exists()  # refused before anything was written


def test_a_pass_sampler_that_never_revisits_a_problem_is_named(tmp_path):
    plan = make_plan(dict(BASE), presets=["grpo", "prioritized-pass"], seeds=[0], budget=64, out=tmp_path,
                     eval_points=4)  # fmt: skip
    assert any("selects as uniform sampling does" in w for w in plan.inactive["prioritized-pass"])
    small = {**BASE, "data": {"train": "builtin:rules:n=20", "test": "builtin:rules-test"}}
    plan = make_plan(small, presets=["grpo", "prioritized-pass"], seeds=[0], budget=256, out=tmp_path, eval_points=4)
    assert "prioritized-pass" not in plan.inactive
