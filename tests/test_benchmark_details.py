"""benchmarks/compare_details.py reads the chosen setting's runs only, in a study grown with --resume."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module(name: str):
    """A script of benchmarks/ (not a package) loaded as a module; benchmarks/ on sys.path, as when run as a script
    (a script imports its siblings)."""
    if str(ROOT / "benchmarks") not in sys.path:
        sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _details_module():
    return _module("compare_details")


def _grown_study(tmp_path: Path) -> Path:
    """eval/grpo with the runs of an earlier choice (B=32) beside the current one (B=4)."""
    for cell in ("train.batch_size=32,train.lr=0.00032", "train.batch_size=4,train.lr=0.00016"):
        for seed in range(2):
            (tmp_path / "eval" / "grpo" / cell / f"seed_{seed}").mkdir(parents=True)
    return tmp_path


def test_chosen_cell_runs_reads_the_cell_summary_json_names(tmp_path):
    module = _details_module()
    root = _grown_study(tmp_path)
    chosen = root / "eval" / "grpo" / "train.batch_size=4,train.lr=0.00016"
    runs = [{"phase": "eval", "dir": str(chosen / f"seed_{s}")} for s in range(2)]
    runs.append({"phase": "tune", "dir": str(root / "tune" / "grpo" / "x" / "seed_100")})
    (root / "summary.json").write_text(json.dumps({"runs": {"grpo": runs}}))
    picked = module.chosen_cell_runs(root / "eval" / "grpo", root / "summary.json")
    assert picked == [chosen / "seed_0", chosen / "seed_1"]


def test_two_cells_without_summary_is_an_error_not_a_mix(tmp_path):
    module = _details_module()
    root = _grown_study(tmp_path)
    with pytest.raises(SystemExit, match="2 settings"):
        module.chosen_cell_runs(root / "eval" / "grpo", root / "summary.json")


def test_one_cell_without_summary_is_read(tmp_path):
    module = _details_module()
    (tmp_path / "eval" / "grpo" / "train.lr=0.00032" / "seed_0").mkdir(parents=True)
    picked = module.chosen_cell_runs(tmp_path / "eval" / "grpo", tmp_path / "summary.json")
    assert [p.name for p in picked] == ["seed_0"]


def test_validation_at_target_reads_each_cell_at_one_target(tmp_path):
    """Two studies' cells read at one absolute target: a crossing is interpolated, a cell below it never reaches it."""
    module = _module("validation_at_target")
    summary = tmp_path / "summary.json"
    summary.write_text(
        json.dumps(
            {
                "tuning_curves": {
                    "rollouts": [0, 100, 200],
                    "by_preset": {
                        "grpo": {
                            "train.batch_size=2,train.lr=4e-05": [0.2, 0.6, 1.0],
                            "train.batch_size=2,train.lr=8e-05": [0.2, 0.5, 0.7],
                        },
                    },
                }
            }
        )
    )
    rows = {cell: hit for _, cell, hit, _, _ in module.cells(summary, 0.8)}
    assert rows["train.batch_size=2,train.lr=4e-05"] == pytest.approx(150.0)
    assert rows["train.batch_size=2,train.lr=8e-05"] == float("inf")


def test_validation_at_target_names_a_summary_without_tuning(tmp_path):
    module = _module("validation_at_target")
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"presets": {}}))
    with pytest.raises(SystemExit, match="summary.json: no tuning curves"):
        module.cells(summary, 0.9)


def test_cross_study_ratio_reads_committed_curves_when_run_directories_are_gone(tmp_path, capsys):
    """A study's summary.json keeps each evaluation run's curve and costs: the paired ratio recomputes from it alone."""
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    module = _module("cross_study_ratio")

    def run(seed: int, speed: float) -> dict:
        evals = [{"rollouts_generated": x, "accuracy": min(1.0, speed * x / 1000)} for x in (0, 250, 500, 750, 1000)]
        metrics = [{"rollouts_generated": x, "tokens_trained": 10, "time/step": 1.0} for x in range(100, 1001, 100)]
        return {"seed": seed, "status": "finished", "evals": evals, "metrics": metrics}

    for name, speed in (("a", 1.5), ("b", 1.0)):
        study = tmp_path / name
        study.mkdir()
        runs = {"grpo": [run(s, speed + 0.01 * s) for s in range(3)]}
        (study / "summary.json").write_text(json.dumps({
            "budget": 1000, "eval_points": 4, "targets": {"0.9": {"accuracy": 0.9}}, "runs": runs,
        }))  # fmt: skip
    assert [r["seed"] for r in module.committed_runs(tmp_path / "a", "grpo")] == [0, 1, 2]
    module.main([f"{tmp_path / 'a'}:grpo", f"{tmp_path / 'b'}:grpo"])
    out = capsys.readouterr().out
    assert "0.9" in out and "x" in out


def test_replay_search_fixes_each_stages_choice_for_its_arm_alone(tmp_path):
    """benchmarks/replay_search.py: each stage's command carries the earlier stages' choices, per preset."""
    module = _module("replay_search")
    assert module.plan_ready(tmp_path) == ["arms"]
    arms = module.stage_args("arms", {})
    assert "grpo:train.updates_per_step=1,2,4,8,16,32" in arms and "adv-replay:replay.warmup_steps=0,2,10" in arms

    def finish(stage, chosen):
        (tmp_path / stage).mkdir()
        (tmp_path / stage / "summary.json").write_text(
            json.dumps({"presets": {p: {"chosen": c, "sensitivity": [{}] * 3} for p, c in chosen.items()}})
        )

    finish("arms", {"grpo": {"train.lr": 0.00064, "train.updates_per_step": 2},
                    "adv-replay": {"train.lr": 0.00032, "replay.warmup_steps": 0}})  # fmt: skip
    shape = " ".join(module.stage_args("shape", module.merged_choices(tmp_path, "shape")))
    assert "--set grpo:train.lr=0.00064 --set grpo:train.updates_per_step=2" in shape
    assert "--set adv-replay:replay.warmup_steps=0" in shape and "--set naive-replay:replay.warmup_steps=0" in shape
    assert "--grid naive-replay:replay.replay_ratio=0.5,1,2" in shape and "grpo:train.updates_per_step=1" not in shape
    finish("shape", {"grpo": {}, "naive-replay": {"train.lr": 0.00016, "replay.replay_ratio": 1},
                     "adv-replay": {"replay.replay_ratio": 2, "replay.priority_exponent": 1}})  # fmt: skip
    age = " ".join(module.stage_args("age", module.merged_choices(tmp_path, "age")))
    assert "--grid adv-replay:train.lr=0.00016,0.00032,0.00064" in age
    assert "--set adv-replay:replay.replay_ratio=2" in age and "--set adv-replay:replay.warmup_steps=0" in age
    finish("age", {"grpo": {}, "adv-replay": {"train.lr": 0.00064, "replay.tau_max": 40}})
    confirm = " ".join(module.stage_args("confirm", module.merged_choices(tmp_path, "confirm")))
    assert "--seeds 5-9" in confirm and "--tune-seeds" not in confirm and "--grid" not in confirm
    assert "--set adv-replay:train.lr=0.00064" in confirm and "--set adv-replay:replay.tau_max=40" in confirm
    assert "--set naive-replay:replay.replay_ratio=1 --set naive-replay:replay.warmup_steps=0" in confirm
    assert module.plan_ready(tmp_path) == ["arms", "shape", "age", "confirm"]
    finish("confirm", {"grpo": {}, "naive-replay": {}, "adv-replay": {}})
    steps = " ".join(module.stage_args("steps", module.merged_choices(tmp_path, "steps")))
    assert "--grid adv-replay:train.updates_per_step=4,8,16,32" in steps
    assert "--grid adv-replay:train.lr=0.00016,0.00032,0.00064" in steps and "--set adv-replay:train.lr" not in steps
    assert "--set adv-replay:replay.tau_max=40" in steps and "--set grpo:train.updates_per_step=2" in steps
    finish("steps", {"grpo": {}, "adv-replay": {"train.lr": 0.00016, "train.updates_per_step": 16}})
    last = " ".join(module.stage_args("confirm-steps", module.merged_choices(tmp_path, "confirm-steps")))
    assert "--seeds 5-9" in last and "--presets grpo,adv-replay" in last and "--grid" not in last
    assert "--set adv-replay:train.lr=0.00016" in last and "--set adv-replay:train.updates_per_step=16" in last
    assert module.plan_ready(tmp_path) == list(module.STAGES)


def test_visits_map_confirms_only_the_sampler_cells_whose_interval_lies_below_one(tmp_path):
    """benchmarks/visits_map.py: one tuned study per pool size; a confirmation for each winning sampler cell only,
    at the rates that pool's study chose, on seeds that chose nothing."""
    module = _module("visits_map")
    pools = {name: " ".join(module.pool_args(name)) for name in module.POOLS}
    assert "data.train=builtin:rules:n=128" in pools["n128"] and "--tune-seeds 100-102" in pools["n128"]
    assert all("prioritized-pass+adv-replay" in args for args in pools.values())

    def ratio(mean, lo, hi):
        return {"0.9": {"completions": {"mean": mean, "ci95": [lo, hi]}}}

    for name in module.POOLS:
        presets = {p: {"chosen": {"train.lr": 0.00032}, "ratio_to_grpo": ratio(1.0, 0.9, 1.1)} for p in module.PRESETS}
        if name == "n128":
            presets["prioritized"] = {"chosen": {"train.lr": 0.00064}, "ratio_to_grpo": ratio(0.7, 0.6, 0.95)}
            presets["adv-replay"]["ratio_to_grpo"] = ratio(0.5, 0.4, 0.6)  # a reference arm, not a sampler cell
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps({"presets": presets}))
    assert module.wins(tmp_path) == [("n128", "prioritized", 0.00064)]
    stages = module.confirm_stages(tmp_path)
    assert list(stages) == ["n128"]
    confirm = " ".join(stages["n128"])
    assert "--presets grpo,prioritized" in confirm and "--seeds 5-9" in confirm and "--tune-seeds" not in confirm
    assert "--set grpo:train.lr=0.00032 --set prioritized:train.lr=0.00064" in confirm


def test_study_driver_skips_a_finished_study_resumes_a_started_one_and_starts_the_rest(tmp_path, monkeypatch):
    """benchmarks/study_driver.py: what replay_search.py and visits_map.py run for each of their studies."""
    module = _module("study_driver")
    calls = []
    monkeypatch.setattr(module, "compare", lambda args: calls.append(args) or 0)
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "summary.json").write_text("{}")
    (tmp_path / "started").mkdir()
    (tmp_path / "started" / "study.json").write_text("{}")
    for name in ("done", "started", "new"):
        assert module.run_study(tmp_path / name, ["--presets", "grpo"], 2) == 0
    assert calls == [
        ["--resume", str(tmp_path / "started"), "--jobs", "2"],
        ["--presets", "grpo", "--out", str(tmp_path / "new"), "--jobs", "2"],
    ]


def test_markdown_adds_the_final_accuracy_by_level_when_scored():
    mod = _details_module()
    row = {"seeds": 2, "steps": 4, "informative_fraction": 0.5, "informative_fraction_last_10_steps": 0.25}
    row |= {"p99_visits": 1, "max_visits": 2, "never_visited": 3, "budget_share_by_level": {"1": 0.5, "2": 0.5}}
    grpo = {**row, "final_accuracy_by_level": {"1": 0.8, "2": 0.25}}
    text = mod.markdown({"grpo": grpo, "adv-replay": {**row, "final_accuracy_by_level": {"1": 0.9}}})
    assert "| preset | final accuracy L1 | final accuracy L2 |" in text
    assert "| grpo | 80.0% | 25.0% |" in text and "| adv-replay | 90.0% | - |" in text
    unscored = mod.markdown({"grpo": {**row, "final_accuracy_by_level": {}}})
    assert "final accuracy" not in unscored


def test_preset_details_sums_the_updates_work_per_run(tmp_path):
    mod = _details_module()
    for seed, rows in enumerate(([10, 20], [30, 40])):
        run = tmp_path / f"seed_{seed}"
        run.mkdir()
        (run / "summary.json").write_text("{}")
        (run / "eval.jsonl").write_text(json.dumps({"accuracy": 0.5}) + "\n")
        metrics = [{"step": i + 1, "informative_fraction": 0.5, "tokens_forwarded": t, "time/update": 1.5}
                   for i, t in enumerate(rows)]  # fmt: skip
        (run / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics))
    d = mod.preset_details([tmp_path / "seed_0", tmp_path / "seed_1"])
    assert d["tokens_forwarded_per_run"] == 50 and d["update_seconds_per_run"] == 3.0  # (30 + 70) / 2, 3 s a run
    assert "| grpo | 50 | 3.0 |" in mod.markdown({"grpo": d})


def test_visits_map_report_gives_the_early_targets_beside_the_90_percent_one(tmp_path, capsys):
    """benchmarks/visits_map.py report: per preset the 90% ratio, then the 50% / 75% ones, and the sampler's own
    statistics read from its evaluation runs' metrics."""
    module = _module("visits_map")

    def ratios(m50, m75, m90):
        return {t: {"completions": {"mean": m, "ci95": [m - 0.1, m + 0.1]}} for t, m in (("0.5", m50), ("0.75", m75),
                                                                                        ("0.9", m90))}  # fmt: skip

    presets = {"grpo": {"chosen": {"train.lr": 0.00032}, "final_accuracy_mean": 0.9},
               "prioritized-pass": {"chosen": {"train.lr": 0.00064}, "final_accuracy_mean": 0.88,
                                    "ratio_to_grpo": ratios(0.7, 0.85, 1.2)}}  # fmt: skip
    (tmp_path / "n128").mkdir()
    (tmp_path / "n128" / "summary.json").write_text(json.dumps({"presets": presets}))
    run = tmp_path / "n128" / "eval" / "prioritized-pass" / "train.lr=0.00064" / "seed_0"
    run.mkdir(parents=True)
    rows = [{"informative_fraction": 0.3}, {"informative_fraction": 0.5, "coverage/never_visited": 2,
                                             "coverage/max_visits": 30, "sampler/solved": 4}]  # fmt: skip
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    module.report(tmp_path)
    line = next(x for x in capsys.readouterr().out.splitlines() if "| n128 |" in x and "prioritized-pass" in x)
    assert "| 1.20x [1.10, 1.30] | 0.70x [0.60, 0.80] / 0.85x [0.75, 0.95] | 0.40 | 2 | 30 | 4 |" in line


def test_visits_map_report_writes_an_open_interval_as_beyond(tmp_path, capsys):
    """A ratio whose bootstrap has no upper end (some resample never reaches the target: ci95 [lo, None] in
    summary.json) is written "[lo, beyond]", as compare's own report does, not a crash."""
    module = _module("visits_map")
    open_ended = {"0.9": {"completions": {"mean": 1.23, "ci95": [0.96, None]}}}
    presets = {"grpo": {"chosen": {"train.lr": 0.00032}, "final_accuracy_mean": 0.9},
               "prioritized": {"chosen": {"train.lr": 0.00064}, "final_accuracy_mean": 0.86,
                               "ratio_to_grpo": open_ended}}  # fmt: skip
    (tmp_path / "n128").mkdir()
    (tmp_path / "n128" / "summary.json").write_text(json.dumps({"presets": presets}))
    module.report(tmp_path)
    line = next(x for x in capsys.readouterr().out.splitlines() if "| n128 |" in x and "prioritized" in x)
    assert "| 1.23x [0.96, beyond] |" in line


def test_visits_map_report_gives_each_levels_draws_and_final_accuracy(tmp_path, capsys):
    """The second table: per pool and preset, each level's share of the draws (the last step's coverage) and its
    final test accuracy (the last evaluation's by_level), averaged over the evaluation runs, in %."""
    module = _module("visits_map")
    presets = {"grpo": {"chosen": {"train.lr": 0.00032}, "final_accuracy_mean": 0.9}}
    (tmp_path / "n128").mkdir()
    (tmp_path / "n128" / "summary.json").write_text(json.dumps({"presets": presets}))
    for seed, (share1, acc2) in enumerate(((0.3, 0.5), (0.2, 0.7))):
        run = tmp_path / "n128" / "eval" / "grpo" / "train.lr=0.00032" / f"seed_{seed}"
        run.mkdir(parents=True)
        metrics = [
            {"informative_fraction": 0.4, "coverage/share_level_1": share1, "coverage/share_level_2": 1 - share1}
        ]
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in metrics))
        evals = [{"step": 0, "by_level": {"1": {"accuracy": 0.0}, "2": {"accuracy": 0.0}}},
                 {"step": 40, "by_level": {"1": {"accuracy": 1.0}, "2": {"accuracy": acc2}}}]  # fmt: skip
        (run / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in evals))
    module.report(tmp_path)
    out = capsys.readouterr().out
    assert "| pool | preset | share of draws, level 1 / 2 | final test accuracy, level 1 / 2 |" in out
    assert "| n128 | grpo | 25 / 75 | 100 / 60 |" in out


def test_visits_map_wins_skips_an_interval_with_no_upper_end(tmp_path):
    """A ratio whose interval has no upper end (ci95 [lo, None]) is not a win, and does not stop the driver."""
    module = _module("visits_map")

    def ratio(mean, ci):
        return {"0.9": {"completions": {"mean": mean, "ci95": ci}}}

    presets = {"grpo": {"chosen": {"train.lr": 0.00032}},
               "prioritized-pass": {"chosen": {"train.lr": 0.00032}, "ratio_to_grpo": ratio(1.2, [0.96, None])},
               "prioritized": {"chosen": {"train.lr": 0.00064}, "ratio_to_grpo": ratio(0.8, [0.7, 0.93])}}  # fmt: skip
    (tmp_path / "n128").mkdir()
    (tmp_path / "n128" / "summary.json").write_text(json.dumps({"presets": presets}))
    assert module.wins(tmp_path) == [("n128", "prioritized", 0.00064)]
