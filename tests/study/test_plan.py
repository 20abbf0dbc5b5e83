"""The plan of a study: its run count, seed disjointness, the grid, the precedence of grid and --set over a preset,
and the edge flag."""

import pytest

from priorl.config import load_config
from priorl.presets import preset_of
from priorl.study import make_plan, parse_grid
from priorl.study.plan import cell_name, edge_flags, grid_cells


@pytest.fixture
def base():
    return load_config("configs/demo.yaml").model_dump(mode="json")


def test_grid_values_are_yaml_and_several_grids_multiply():
    grid = parse_grid(["train.lr=2e-5,4e-5", "train.updates_per_step=2,4,8"])
    assert grid == {"train.lr": [2e-5, 4e-5], "train.updates_per_step": [2, 4, 8]}
    cells = grid_cells(grid)
    assert len(cells) == 6 and cells[0] == {"train.lr": 2e-5, "train.updates_per_step": 2}
    assert cell_name(cells[-1]) == "train.lr=4e-05,train.updates_per_step=8" and cell_name({}) == "default"
    for bad, why in [
        (["train.lr"], "expected key=v1,v2"),
        (["train.lr=1,1"], "listed twice"),
        (["train.lr=1", "train.lr=2"], "gridded twice"),
        (["replay.kind=none,adv"], "--presets"),
        (["train.lr=1,,2"], "empty value"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_grid(bad)


def test_the_plan_counts_its_runs_before_anything_runs(base, tmp_path):
    plan = make_plan(
        base, presets=["grpo", "adv-replay", "prioritized"], seeds=[0, 1, 2, 3, 4], tune_seeds=[100, 101],
        budget=1000, out=tmp_path, grid=parse_grid(["train.lr=1e-5,2e-5,4e-5,8e-5"]),
    )  # fmt: skip
    assert len(plan.tuning) == 3 * 4 * 2 and plan.n_runs == 3 * 4 * 2 + 3 * 5
    text = plan.describe()
    assert "3 presets x 4 grid value(s) x 2 tuning seeds + 3 presets x 5 evaluation seeds = 39 runs" in text
    assert "1,000 completions each" in text and "seeds 0-4" in text
    assert not any(tmp_path.iterdir())  # planning writes nothing
    # every tuning run evaluates on validation, in its own directory; the evaluation runs on test
    run = plan.tuning[0]
    assert run.config.eval.split == "validation" and run.config.data.validation == "auto"
    assert run.dir == tmp_path / "tune" / "grpo" / "train.lr=1e-05" / "seed_100"
    (ev,) = [r for r in plan.eval_runs({p: {"train.lr": 4e-5} for p in plan.presets}) if r.key[1:] ==
             ("adv-replay", "train.lr=4e-05", 3)]  # fmt: skip
    assert ev.config.eval.split == "test" and ev.config.train.lr == 4e-5 and ev.config.seed == 3
    assert ev.config.data == run.config.data  # both phases train on the same problems
    assert ev.config.eval.every_rollouts == 1000 // 32


def test_tuning_and_evaluation_seeds_are_disjoint(base, tmp_path):
    with pytest.raises(ValueError, match=r"seeds \[1\] are both tuning and evaluation seeds"):
        make_plan(base, presets=["grpo"], seeds=[0, 1], tune_seeds=[1, 2], budget=100, out=tmp_path)
    # a grid without tuning seeds tunes on three seeds after the evaluation seeds (disjoint by construction)
    plan = make_plan(base, presets=["grpo"], seeds=[0, 200], budget=100, out=tmp_path, grid={"train.lr": [1e-5]})
    assert plan.tune_seeds == [201, 202, 203]
    with pytest.raises(ValueError, match="baseline 'grpo'"):
        make_plan(base, presets=["adv-replay"], seeds=[0], budget=100, out=tmp_path)


def test_grid_and_set_override_what_a_preset_sets(base, tmp_path):
    # experimental-beta pins sampler.selection=thompson and sampler.estimator=beta; --set and the grid come after it
    plan = make_plan(
        base, presets=["grpo", "experimental-beta"], seeds=[0], tune_seeds=[9], budget=100, out=tmp_path,
        overrides=["sampler.selection=stochastic", "train.lr=1e-3", "replay.tau_max=3"],
        grid=parse_grid(["sampler.estimator=ema,window"]),
    )  # fmt: skip
    runs = {(r.preset, r.cell.get("sampler.estimator")): r.config for r in plan.tuning}
    cfg = runs[("experimental-beta", "ema")]
    assert cfg.sampler.kind == "experimental-prioritized" and cfg.sampler.selection == "stochastic"
    assert cfg.sampler.estimator == "ema"
    assert cfg.train.lr == 1e-3
    # grpo's sampler does not use sampler.estimator: it is tuned over nothing, once, and the plan says so
    assert [r.cell for r in plan.tuning if r.preset == "grpo"] == [{}]
    assert "--grid sampler.estimator not tuned for grpo" in plan.describe()
    # a grid value beats a --set of the same key
    plan = make_plan(base, presets=["grpo"], seeds=[0], tune_seeds=[9], budget=100, out=tmp_path,
                     overrides=["train.lr=1e-3"], grid={"train.lr": [2e-5]})  # fmt: skip
    assert plan.tuning[0].config.train.lr == 2e-5


def test_a_set_key_of_a_part_a_preset_turns_off_is_left_out_and_said(base, tmp_path):
    plan = make_plan(base, presets=["grpo", "adv-replay"], seeds=[0], budget=100, out=tmp_path,
                     overrides=["replay.tau_max=3"])  # fmt: skip
    assert "--set replay.tau_max left out of grpo's runs" in plan.describe()
    runs = {r.preset: r.config for r in plan.eval_runs({"grpo": {}, "adv-replay": {}})}
    assert runs["adv-replay"].replay.tau_max == 3 and runs["grpo"].replay.kind == "none"


def test_a_preset_prefix_sets_or_grids_a_key_for_that_preset_alone(base, tmp_path):
    grid = parse_grid(["train.lr=1e-4,2e-4", "grpo:train.updates_per_step=2,8", "adv-replay:replay.warmup_steps=0,2"])
    plan = make_plan(
        base, presets=["grpo", "naive-replay", "adv-replay"], seeds=[0], tune_seeds=[9], budget=100, out=tmp_path,
        grid=grid, overrides=["naive-replay:replay.warmup_steps=1", "adv-replay:train.lr=5e-5", "prioritized:x.y=1"],
    )  # fmt: skip
    cells = {p: [r.cell for r in plan.tuning if r.preset == p] for p in plan.presets}
    assert len(cells["grpo"]) == 4 and {c["train.updates_per_step"] for c in cells["grpo"]} == {2, 8}
    assert cells["naive-replay"] == [{"train.lr": 1e-4}, {"train.lr": 2e-4}]  # neither prefixed key is its
    assert {c["replay.warmup_steps"] for c in cells["adv-replay"]} == {0, 2}
    configs = {(r.preset, cell_name(r.cell)): r.config for r in plan.tuning}
    naive = configs[("naive-replay", "train.lr=0.0001")]
    assert naive.replay.warmup_steps == 1 and naive.train.updates_per_step == 4  # the base's, not grpo's grid
    adv = configs[("adv-replay", "train.lr=0.0002,replay.warmup_steps=2")]
    assert adv.train.lr == 2e-4 and adv.replay.warmup_steps == 2  # the grid beats the preset's own --set
    assert (tmp_path / "tune" / "grpo" / "train.lr=0.0001,train.updates_per_step=8") in {r.dir.parent for r in
                                                                                         plan.tuning}  # fmt: skip
    assert "--set prioritized:x.y=1 name(s) a preset not in --presets: unused" in plan.describe()
    # an edge flag names the key as it was gridded
    (flag,) = edge_flags({"train.updates_per_step": [2, 8]}, {"train.updates_per_step": 8},
                         {"train.updates_per_step": "grpo:train.updates_per_step"})  # fmt: skip
    assert "--grid grpo:train.updates_per_step=2,8,32" in flag
    for bad, why in [
        (["grpoo:train.lr=1,2"], "unknown preset 'grpoo'; did you mean 'grpo'"),
        (["train.lr=1,2", "grpo:train.lr=3"], "gridded for every preset and for one"),
        (["grpo:replay.kind=none"], "--presets"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_grid(bad)
    with pytest.raises(ValueError, match="--set advreplay:train.lr=1: advreplay:train.lr: unknown preset"):
        make_plan(base, presets=["grpo"], seeds=[0], budget=100, out=tmp_path, overrides=["advreplay:train.lr=1"])


def test_a_bad_grid_key_is_reported_before_anything_runs(base, tmp_path):
    with pytest.raises(ValueError, match="preset grpo at train.lrr=0.1"):
        make_plan(base, presets=["grpo"], seeds=[0], tune_seeds=[5], budget=100, out=tmp_path,
                  grid={"train.lrr": [0.1]})  # fmt: skip


def test_edge_flag_names_the_next_value():
    grid = {"train.lr": [2e-5, 4e-5, 8e-5, 1.6e-4]}
    (flag,) = edge_flags(grid, {"train.lr": 1.6e-4})
    assert "largest value tried" in flag and "add 0.00032" in flag and "--resume" in flag
    (flag,) = edge_flags(grid, {"train.lr": 2e-5})
    assert "smallest" in flag and "add 1e-05" in flag
    assert edge_flags(grid, {"train.lr": 4e-5}) == []
    (flag,) = edge_flags({"train.updates_per_step": [2, 4, 6]}, {"train.updates_per_step": 6})
    assert "add 9" in flag
    assert edge_flags({"sampler.estimator": ["ema", "last"]}, {"sampler.estimator": "ema"}) == []
    assert "nothing was tuned" in edge_flags({"train.lr": [1e-5]}, {"train.lr": 1e-5})[0]


def test_the_papers_pair_sets_centred_advantages_and_set_or_grid_override_it(base, tmp_path):
    plan = make_plan(base, presets=["grpo", "grpo-centred", "prioritized-paper"], seeds=[0], budget=100, out=tmp_path)
    runs = {r.preset: r.config for r in plan.eval_runs({p: {} for p in ("grpo", "grpo-centred", "prioritized-paper")})}
    assert runs["grpo"].train.advantage_scale == "group"  # grpo keeps the base config's (std-scaled) advantages
    assert runs["grpo-centred"].train.advantage_scale == "none" and runs["grpo-centred"].sampler.kind == "uniform"
    paper = runs["prioritized-paper"]
    assert (paper.train.advantage_scale, paper.sampler.kind) == ("none", "prioritized")
    assert preset_of(paper) == "prioritized-paper" and preset_of(runs["grpo-centred"]) == "grpo-centred"
    # --set comes after the preset, and a grid value after --set
    plan = make_plan(base, presets=["grpo", "prioritized-paper"], seeds=[0], tune_seeds=[9], budget=100, out=tmp_path,
                     overrides=["train.advantage_scale=group"])  # fmt: skip
    cfg = next(r.config for r in plan.tuning if r.preset == "prioritized-paper")
    assert cfg.train.advantage_scale == "group" and preset_of(cfg) == "prioritized"
    grid = parse_grid(["train.advantage_scale=group,none"])
    plan = make_plan(base, presets=["grpo", "prioritized-paper"], seeds=[0], tune_seeds=[9], budget=100, out=tmp_path,
                     overrides=["train.advantage_scale=none"], grid=grid)  # fmt: skip
    cells = {r.cell["train.advantage_scale"]: r.config.train.advantage_scale
             for r in plan.tuning if r.preset == "prioritized-paper"}  # fmt: skip
    assert cells == {"group": "group", "none": "none"}


def test_no_edge_flag_past_a_keys_own_bound():
    from priorl.study.plan import edge_flags

    # retest_fraction >= 0: a choice of 0 has nothing below it; informative_share <= 1: nothing above 1
    assert edge_flags({"sampler.retest_fraction": [0, 0.25]}, {"sampler.retest_fraction": 0}) == []
    share = "dynamic_sampling.informative_share"
    assert edge_flags({share: [0.5, 1.0]}, {share: 1.0}) == []
    flags = edge_flags({share: [0.25, 0.5]}, {share: 0.25})
    assert len(flags) == 1 and "add 0.125" in flags[0]


def test_a_resumes_grid_grows_the_keys_it_names_and_keeps_the_others():
    """The edge flag suggests ``--resume --grid KEY=...`` for the one key at the edge; the study's other grid keys
    must stay (they were dropped before round 11, so the resume re-tuned a different grid)."""
    from priorl.study.plan import merge_grid

    recorded = {"grpo:train.lr": [1.6e-4, 3.2e-4], "grpo:train.updates_per_step": [1, 8], "adv-replay:train.lr": [1e-4]}
    grown = merge_grid(recorded, parse_grid(["grpo:train.updates_per_step=1,8,16"]))
    assert grown == {**recorded, "grpo:train.updates_per_step": [1, 8, 16]}
    assert merge_grid(recorded, {}) == recorded
    with pytest.raises(ValueError, match=r"--grid train.lr: the resumed study grids grpo:train.lr"):
        merge_grid(recorded, parse_grid(["train.lr=1e-4,2e-4"]))
    with pytest.raises(ValueError, match=r"grids train.lr"):
        merge_grid({"train.lr": [1e-4]}, parse_grid(["grpo:train.lr=1e-4,2e-4"]))


def test_a_resume_with_one_grid_key_keeps_the_recorded_grid(tmp_path):
    """Through study_request, as `priorl compare --resume OUT --grid KEY=...` builds its plan."""
    import json

    from priorl.config import load_config
    from priorl.study.request import study_request

    base = load_config("configs/study.yaml").model_dump(mode="json")
    grid = {"train.lr": [1.6e-4, 3.2e-4], "grpo:train.updates_per_step": [1, 8]}
    inputs = {"presets": ["grpo", "adv-replay"], "seeds": [0], "tune_seeds": [100], "grid": grid, "overrides": [],
              "budget": 512, "eval_points": 4, "base_config": base}  # fmt: skip
    (tmp_path / "study.json").write_text(json.dumps({"inputs": inputs, "sessions": [], "runs": {}}))
    req = study_request(resume=str(tmp_path), grid=["grpo:train.updates_per_step=1,8,16"])
    assert req.plan.grid == {"train.lr": [1.6e-4, 3.2e-4], "grpo:train.updates_per_step": [1, 8, 16]}
