"""What a resumed study may change: presets, grid values and seeds grow; what every run depends on is refused."""

import pytest

from priorl.study.record import check_inputs

BASE = {"train": {"lr": 1e-5, "batch_size": 4}}
INPUTS = {
    "presets": ["grpo", "adv-replay"], "seeds": [0, 1], "tune_seeds": [100], "grid": {"train.lr": [1e-5, 2e-5]},
    "overrides": ["eval.max_problems=8"], "budget": 64, "eval_points": 32, "targets": [0.5, 0.75, 0.9],
    "target_kind": "gain", "primary": "adv-replay", "base_config": BASE,
}  # fmt: skip


def test_presets_grid_and_seeds_may_grow(tmp_path):
    grown = {**INPUTS, "presets": ["grpo", "adv-replay", "prioritized"], "seeds": [0, 1, 2], "tune_seeds": [100, 101],
             "grid": {"train.lr": [1e-5, 2e-5, 4e-5]}}  # fmt: skip
    check_inputs(tmp_path, {"inputs": INPUTS}, grown)


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("budget", 128, "budget (64 there, 128 now)"),
        ("primary", "prioritized", "primary (adv-replay there, prioritized now)"),
        ("targets", [0.9], "targets"),
        ("overrides", [], "overrides"),
        ("base_config", {"train": {"lr": 1e-5, "batch_size": 8}}, "train.batch_size (4 there, 8 now)"),
    ],
)
def test_what_every_run_depends_on_is_refused(tmp_path, key, value, named):
    with pytest.raises(ValueError, match="started with other inputs") as err:
        check_inputs(tmp_path, {"inputs": INPUTS}, {**INPUTS, key: value})
    assert named in str(err.value)


def test_a_run_saved_before_a_key_was_added_is_still_this_studys(tmp_path):
    import yaml

    from priorl.config import load_config
    from priorl.study.record import check_run_config

    cfg = load_config("configs/study.yaml", [f"out_dir={tmp_path / 'run'}"])
    saved = cfg.model_dump(mode="json")
    del saved["train"]["engine"]  # written by a priorl without train.engine (at its default now)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump(saved))
    check_run_config(tmp_path, cfg)
    saved["train"]["lr"] = 1.0  # a real difference is still refused, by name
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump(saved))
    with pytest.raises(ValueError, match=r"train.lr \(1.0 there"):
        check_run_config(tmp_path, cfg)
