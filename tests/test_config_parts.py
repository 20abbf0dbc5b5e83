"""The config names a run's parts; presets are overlays of those keys; unknown keys are refused."""

import pytest

from priorl.config import ConfigError, RunConfig, load_config
from priorl.presets import (
    DEFAULT_PRESETS,
    DESCRIPTIONS,
    PART_KEYS,
    PRESETS,
    apply_preset,
    describe,
    preset_config,
    preset_of,
)


def test_defaults_are_the_adv_replay_preset():
    cfg = RunConfig()
    assert (cfg.sampler.kind, cfg.replay.kind, cfg.dynamic_sampling.enabled) == ("uniform", "adv-replay", False)
    assert preset_of(cfg) == "adv-replay"


def test_every_preset_sets_every_part_and_validates():
    assert set(DEFAULT_PRESETS) <= set(PRESETS) and set(DESCRIPTIONS) == set(PRESETS)
    for name, overlay in PRESETS.items():
        assert set(PART_KEYS) <= set(overlay), name
        cfg = preset_config(None, preset=name)
        assert preset_of(cfg) == name, (name, describe(name))
    assert len({tuple(sorted(o.items())) for o in PRESETS.values()}) == len(PRESETS)  # no two presets alike


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (
            ["replay.kind=none", "replay.tau_max=3"],
            r"replay.tau_max is set, but replay.kind is 'none'.*replay.kind to adv-replay",
        ),
        (
            ["replay.kind=naive-replay", "replay.priority_exponent=1"],
            r"replay.priority_exponent is set, but replay.kind is 'naive-replay'",
        ),
        (
            ["sampler.retest_every=3"],
            r"sampler.retest_every is set, but sampler.kind is 'uniform'.*"
            r"sampler.kind to prioritized or experimental-prioritized",
        ),
        (
            ["sampler.floor=0.1"],
            r"sampler.floor is set, but sampler.kind is 'uniform'.*"
            r"sampler.kind to prioritized-pass or experimental-prioritized",
        ),
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
    cfg = load_config(None, ["replay.kind=naive-replay", "replay.replay_ratio=0.25", "replay.warmup_steps=3"])
    assert preset_of(cfg) == "naive-replay" and cfg.replay.replay_ratio == 0.25


def test_an_unknown_key_is_refused_with_a_suggestion():
    # Keys never published under another name have no compatibility table: an unknown key is an error that
    # suggests the closest one.
    with pytest.raises(ConfigError, match=r"--set replay.alpha=1: unknown key 'replay.alpha'"):
        load_config(None, ["replay.alpha=1"])
    with pytest.raises(ValueError, match=r"strategy"):  # pydantic's error: extra keys are forbidden
        RunConfig.model_validate({"strategy": "grpo"})


def test_a_preset_resets_the_options_of_parts_it_turns_off_and_says_which(tmp_path):
    path = tmp_path / "base.yaml"
    path.write_text("sampler:\n  kind: prioritized\n  retest_every: 7\n  floor: 0.05\nreplay:\n  tau_max: 4\n")
    notes = []
    grpo = preset_config(path, preset="grpo", notes=notes)
    assert preset_of(grpo) == "grpo" and grpo.sampler.options() == {} and grpo.replay.options() == {}
    (note,) = notes
    assert "sampler.retest_every" in note and "sampler.floor" in note and "replay.tau_max" in note
    # a preset of the same kind keeps the options it does not pin; one of another kind keeps the shared ones
    paper = preset_config(path, preset="prioritized+adv-replay")
    assert paper.sampler.retest_every == 7 and paper.replay.tau_max == 4
    passed = preset_config(path, preset="prioritized-pass")
    assert passed.sampler.kind == "prioritized-pass" and passed.sampler.floor == 0.05
    assert "retest_every" not in passed.sampler.options()  # the heap's option is not the pass sampler's
    # --set overrides come after the preset
    assert preset_config(path, ["sampler.retest_every=3"], preset="prioritized").sampler.retest_every == 3
    with pytest.raises(ConfigError, match="unknown preset 'sorted'.*the presets: grpo"):
        preset_config(path, preset="sorted")


def test_apply_preset_leaves_its_input_alone():
    data = RunConfig().model_dump()
    out, dropped = apply_preset(data, "prioritized")
    assert data["sampler"]["kind"] == "uniform" and out["sampler"]["kind"] == "prioritized" and dropped == []
