"""Presets: named overlays of the config keys that choose the parts of a run, defined once.

A run is made of three parts, each named by one key (see :mod:`priorl.config`):

- the problem sampler, ``sampler.kind``: ``uniform``, ``prioritized-pass`` (:class:`~priorl.PrioritizedPassSampler`)
  or ``prioritized`` (:class:`~priorl.PrioritizedSampler`, the paper's heap form);
- the replay buffer, ``replay.kind``: ``none``, ``naive-replay`` (uniform, no age limit) or ``adv-replay``
  (:class:`~priorl.AdvReplayBuffer`, |advantage|-prioritized, age <= ``tau_max``);
- DAPO dynamic sampling, ``dynamic_sampling.enabled``, or with its K-of-B options the K-of-B step (train once K
  informative groups are in hand; docs/sampler.md).

A preset sets those keys (and, for the prioritized presets, the sampler options that define the method) and,
where a method defines it, the one training key that is part of a method: ``train.advantage_scale`` (the paper's
sampler ranks groups by p(1-p), the squared-advantage mass of a group whose advantages are centred on the group
mean and *not* divided by its standard deviation, so ``prioritized-paper`` sets ``none``, and ``grpo-centred`` is
its baseline). Nothing else, so every preset of one comparison shares model, data, batch shape and optimizer;
``--set`` and ``--grid`` come after the preset and override it. ``priorl train
--preset NAME`` and ``priorl compare --presets a,b`` read this table, and so does anything else that names a
method. Applying a preset over a config resets the keys of the parts it turns off (or switches to another kind)
to their defaults, and says which (:func:`apply_preset`).

This module imports nothing heavy (no torch), so ``priorl --help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from priorl.config import ConfigError, foreign_keys, get_key, read_config, validate_config

if TYPE_CHECKING:
    from priorl.config import RunConfig

# The three keys that choose the parts. A preset sets all three.
PART_KEYS = ("sampler.kind", "replay.kind", "dynamic_sampling.enabled")

_UNIFORM = {"sampler.kind": "uniform"}
# Fatemi (2026): top-B p(1-p) of the last group
_PAPER = {"sampler.kind": "prioritized"}
# A Beta posterior per problem with per-level priors, and Thompson selection (sampling/experimental/)
_BAYES = {"sampler.kind": "experimental-prioritized", "sampler.estimator": "beta", "sampler.selection": "thompson"}
_PASS = {"sampler.kind": "prioritized-pass"}  # selection within a shuffled pass, by the posterior P(informative group)
_NO_REPLAY = {"replay.kind": "none"}
_ADV = {"replay.kind": "adv-replay"}
_PLAIN = {"dynamic_sampling.enabled": False}
_CENTRED = {"train.advantage_scale": "none"}  # A_i = r_i - mean(r): the paper's advantage (Fatemi, 2026)
# The K-of-B step (docs/sampler.md): train once K = 3/8 B informative groups are in hand, generating rounds of B/4
_KOFB = {
    "dynamic_sampling.enabled": True,
    "dynamic_sampling.informative_share": 0.375,
    "dynamic_sampling.max_rounds": 16,
}

PRESETS: dict[str, dict[str, Any]] = {
    "grpo": {**_UNIFORM, **_NO_REPLAY, **_PLAIN},
    "grpo-centred": {**_UNIFORM, **_NO_REPLAY, **_PLAIN, **_CENTRED},
    "dynamic-sampling": {**_UNIFORM, **_NO_REPLAY, "dynamic_sampling.enabled": True},
    "grpo-kofb": {**_UNIFORM, **_NO_REPLAY, **_KOFB},
    "prioritized": {**_PAPER, **_NO_REPLAY, **_PLAIN},
    "prioritized-paper": {**_PAPER, **_NO_REPLAY, **_PLAIN, **_CENTRED},
    "prioritized-pass": {**_PASS, **_NO_REPLAY, **_PLAIN},
    "prioritized-pass-kofb": {**_PASS, **_NO_REPLAY, **_KOFB},
    "naive-replay": {**_UNIFORM, "replay.kind": "naive-replay", **_PLAIN},
    "adv-replay": {**_UNIFORM, **_ADV, **_PLAIN},
    "prioritized+adv-replay": {**_PAPER, **_ADV, **_PLAIN},
    "prioritized-pass+adv-replay": {**_PASS, **_ADV, **_PLAIN},
    # Experimental: slower than tuned grpo on both mixes measured (round 9 in benchmarks/RESULTS.md)
    "experimental-beta": {**_BAYES, **_NO_REPLAY, **_PLAIN},
    "experimental-beta+adv-replay": {**_BAYES, **_ADV, **_PLAIN},
}

# What each preset is, in a few words (for --help and the docs).
DESCRIPTIONS: dict[str, str] = {
    "grpo": "uniform problems, no replay: plain GRPO, the baseline",
    "grpo-centred": "plain GRPO with mean-centred advantages (not divided by the group std): the paper pair's baseline",
    "dynamic-sampling": "uniform problems, DAPO dynamic sampling (regenerate until B informative groups)",
    "grpo-kofb": "uniform problems and the K-of-B step (the control for prioritized-pass-kofb)",
    "prioritized": "the paper's heap sampler: top-B p(1-p) of the last group, solved/unsolved retested",
    "prioritized-paper": "the paper's heap sampler with the paper's mean-centred advantages (advantage_scale none)",
    "prioritized-pass": "pass sampler: selection within a shuffled pass by the posterior P(informative group)",
    "prioritized-pass-kofb": "pass sampler, and the K-of-B step: train once K = 3/8 B informative groups are in hand",
    "naive-replay": "uniform problems, replay of past rollouts drawn uniformly (no age limit)",
    "adv-replay": "uniform problems, |advantage|-prioritized replay with age <= tau_max (the default)",
    "prioritized+adv-replay": "the paper's heap sampler plus adv replay",
    "experimental-beta": "experimental: heap sampler with a Beta posterior per problem and Thompson selection",
    "experimental-beta+adv-replay": "experimental: the Beta/Thompson heap sampler plus adv replay",
    "prioritized-pass+adv-replay": "the pass sampler plus adv replay",
}

# The study's presets (benchmarks/RESULTS.md): `priorl compare` runs these unless --presets is given.
DEFAULT_PRESETS: tuple[str, ...] = (
    "grpo", "prioritized", "prioritized-pass", "adv-replay", "prioritized+adv-replay", "prioritized-pass+adv-replay",
)  # fmt: skip

BASELINE = "grpo"


class PresetError(ValueError):
    """An unknown preset name; the message lists the known ones."""


def unknown_preset(name: str) -> str:
    """The message for a preset name that is not one: the closest known name first (``did you mean``), then all."""
    import difflib

    close = difflib.get_close_matches(name, list(PRESETS), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown preset {name!r}{hint} (the presets: {', '.join(PRESETS)})"


def check_preset(name: str) -> dict[str, Any]:
    """The overlay of preset ``name``, or :class:`PresetError` naming the presets there are."""
    try:
        return PRESETS[name]
    except KeyError:
        raise PresetError(unknown_preset(name)) from None


def preset_overrides(name: str) -> list[str]:
    """The preset as ``--set`` style ``key=value`` strings (values in YAML), in the table's order."""
    import yaml

    return [f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"
            for k, v in check_preset(name).items()]  # fmt: skip


def describe(name: str) -> str:
    """``name``'s overlay in one line: ``sampler.kind=prioritized, replay.kind=none, ...``."""
    return ", ".join(f"{k}={v}" for k, v in check_preset(name).items())


def apply_preset(data: dict, name: str) -> tuple[dict, list[str]]:
    """``data`` (a nested config dict, e.g. ``RunConfig.model_dump()``) with preset ``name`` laid over it.

    The keys of a part the preset turns off, or switches to another kind, go back to their defaults first (a
    heap preset over a pass config keeps only the options both kinds share; ``grpo`` over a config with replay
    options drops them), then the preset's keys are set. Returns the new dict and the dotted keys that were reset
    from a non-default value, so a caller can say what the preset dropped. ``data`` itself is not changed.
    """
    overlay = check_preset(name)
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    dropped: list[str] = []
    for key in PART_KEYS:
        section, field = key.split(".")
        sec = out.setdefault(section, {})
        for k, default in foreign_keys(section, overlay[key]).items():
            if k in sec and sec[k] != default:
                dropped.append(f"{section}.{k}")
            sec.pop(k, None)
        sec[field] = overlay[key]
    for key, value in overlay.items():
        section, field = key.split(".")
        out.setdefault(section, {})[field] = value
    return out, dropped


def preset_config(
    path=None,
    overrides: list[str] | None = None,
    *,
    preset: str | None = None,
    notes: list[str] | None = None,
    origins: dict[str, str] | None = None,
) -> RunConfig:
    """A run config: the YAML file at ``path`` (or the defaults), preset ``preset`` laid over it
    (:func:`apply_preset`), then the ``--set`` style ``overrides`` (:func:`priorl.config.load_config` without a
    preset). When the preset resets keys the file had set (options of a part it turns off), a sentence naming
    them is appended to ``notes``. Raises ConfigError naming the source of a bad key or an unknown preset."""
    data, where = read_config(path)
    if preset is not None:
        try:
            data, dropped = apply_preset(data, preset)
        except PresetError as exc:
            raise ConfigError(f"--preset: {exc}") from None
        where = f"{where} with preset {preset}"
        if dropped and notes is not None:
            which = "that key belongs" if len(dropped) == 1 else "those keys belong"
            notes.append(
                f"preset {preset} resets {', '.join(dropped)} to the default: {which} to a part the preset turns "
                "off or switches to another kind"
            )
    return validate_config(data, overrides, where=where, origins=origins)


def preset_of(config: RunConfig) -> str | None:
    """The name of the preset whose parts ``config`` has (the most specific first), or None for another mix."""
    # The most specific first: grpo-centred (which also sets train.advantage_scale) before grpo. The K-of-B
    # step's K, b and max_rounds are settings to tune, not the method: a K-of-B preset is any K and b.
    for name, overlay in sorted(PRESETS.items(), key=lambda item: -len(item[1])):
        kofb = any(k.startswith("dynamic_sampling.") and k != "dynamic_sampling.enabled" for k in overlay)
        if kofb == config.dynamic_sampling.k_of_b and all(
            get_key(config, k) == v for k, v in overlay.items() if k == "dynamic_sampling.enabled" or not kofb
            or not k.startswith("dynamic_sampling.")
        ):  # fmt: skip
            return name
    return None
