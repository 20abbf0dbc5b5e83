"""The config names a run's parts; presets are overlays of those keys; renamed and removed keys are refused."""

import pytest

from priorl.config import REMOVED, RENAMED, ConfigError, RunConfig, config_keys, load_config
from priorl.presets import DEFAULT_PRESETS, DESCRIPTIONS, PART_KEYS, PRESETS, apply_preset, describe


def test_defaults_are_the_adv_replay_preset():
    cfg = RunConfig()
    assert (cfg.sampler.kind, cfg.replay.kind, cfg.dynamic_sampling.enabled) == ("uniform", "adv", False)
    assert cfg.preset == "adv-replay"


def test_every_preset_sets_every_part_and_validates():
    assert set(DEFAULT_PRESETS) <= set(PRESETS) and set(DESCRIPTIONS) == set(PRESETS)
    for name, overlay in PRESETS.items():
        assert set(PART_KEYS) <= set(overlay), name
        cfg = load_config(None, preset=name)
        assert cfg.preset == name, (name, describe(name))
    assert len({tuple(sorted(o.items())) for o in PRESETS.values()}) == len(PRESETS)  # no two presets alike


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (
            ["replay.kind=none", "replay.tau_max=3"],
            r"replay.tau_max is set, but replay.kind is 'none'.*replay.kind to adv",
        ),
        (
            ["replay.kind=naive", "replay.priority_exponent=1"],
            r"replay.priority_exponent is set, but replay.kind is 'naive'",
        ),
        (
            ["sampler.retest_every=3"],
            r"sampler.retest_every is set, but sampler.kind is 'uniform'.*sampler.kind to heap",
        ),
        (["sampler.floor=0.1"], r"sampler.floor is set, but sampler.kind is 'uniform'.*sampler.kind to pass or heap"),
        (
            ["dynamic_sampling.max_rounds=5"],
            r"dynamic_sampling.max_rounds is set, but dynamic_sampling.enabled is false",
        ),
    ],
)
def test_a_key_of_a_part_that_is_off_is_an_error_that_names_it(overrides, named):
    with pytest.raises(ConfigError, match=named):
        load_config(None, overrides)


def test_naive_replay_keeps_the_keys_it_uses():
    cfg = load_config(None, ["replay.kind=naive", "replay.replay_ratio=0.25", "replay.warmup_steps=3"])
    assert cfg.preset == "naive-replay" and cfg.replay.replay_ratio == 0.25


@pytest.mark.parametrize("old", sorted(RENAMED))
def test_renamed_keys_are_refused_with_the_new_name(old, tmp_path):
    section, key = old.split(".")
    path = tmp_path / "old.yaml"
    path.write_text(f"{section}:\n  {key}: 1\n")
    with pytest.raises(ConfigError, match=rf"{path}: '{old}' was renamed to '{RENAMED[old]}'"):
        load_config(path)
    assert RENAMED[old] in config_keys() and old not in config_keys()


@pytest.mark.parametrize("old", sorted(REMOVED))
def test_removed_keys_are_refused_with_the_reason(old):
    with pytest.raises(ConfigError, match=rf"'{old}' was removed: "):
        load_config(None, [f"{old}=grpo" if old == "strategy" else f"{old}=1"])
    assert old not in config_keys()


def test_an_old_strategy_names_the_preset_that_replaces_it():
    with pytest.raises(
        ValueError, match=r"strategy 'dynamic-sampling' is --preset dynamic-sampling: sampler.kind=uniform"
    ):
        RunConfig.model_validate({"strategy": "dynamic-sampling"})  # the Python API refuses it too (pydantic's error)


def test_a_preset_resets_the_options_of_parts_it_turns_off_and_says_which(tmp_path):
    path = tmp_path / "base.yaml"
    path.write_text("sampler:\n  kind: heap\n  retest_every: 7\n  floor: 0.05\nreplay:\n  tau_max: 4\n")
    notes = []
    grpo = load_config(path, preset="grpo", notes=notes)
    assert grpo.preset == "grpo" and grpo.sampler.retest_every == 10 and grpo.replay.tau_max == 10
    (note,) = notes
    assert "sampler.retest_every" in note and "sampler.floor" in note and "replay.tau_max" in note
    # a preset of the same kind keeps the options it does not pin; one of another kind keeps the shared ones
    paper = load_config(path, preset="prioritized+adv-replay")
    assert paper.sampler.retest_every == 7 and paper.replay.tau_max == 4
    passed = load_config(path, preset="prioritized-pass")
    assert passed.sampler.kind == "pass" and passed.sampler.floor == 0.05 and passed.sampler.retest_every == 10
    # --set overrides come after the preset
    assert load_config(path, ["sampler.retest_every=3"], preset="prioritized").sampler.retest_every == 3
    with pytest.raises(ConfigError, match="unknown preset 'sorted'.*the presets: grpo"):
        load_config(path, preset="sorted")


def test_apply_preset_leaves_its_input_alone():
    data = RunConfig().model_dump()
    out, dropped = apply_preset(data, "prioritized")
    assert data["sampler"]["kind"] == "uniform" and out["sampler"]["kind"] == "heap" and dropped == []


def test_a_renamed_preset_is_refused_with_its_new_name_and_why():
    from priorl.presets import PresetError, check_preset

    with pytest.raises(PresetError, match=r"'prioritized-beta' is now 'experimental-beta': slower than tuned grpo"):
        check_preset("prioritized-beta")
    with pytest.raises(ConfigError, match=r"--preset: preset 'prioritized-beta\+adv-replay' is now"):
        load_config(None, preset="prioritized-beta+adv-replay")
    assert check_preset("experimental-beta")["sampler.estimator"] == "beta"
