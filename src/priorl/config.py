"""Run configuration: one YAML file validated by typed models, with ``--set key=value`` overrides.

An unknown key anywhere is an error that names it (``extra="forbid"``) and suggests the key meant
(``train.batch_sze`` -> ``train.batch_size``). The resolved configuration is written to the run directory
as ``config.yaml``, and a resumed run reads it back from there.
"""

from __future__ import annotations

import difflib
import math
import os
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from priorl import registry


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class LoraConfig(_Section):
    """LoRA adapters through peft (``pip install priorl[peft]``)."""

    r: int = Field(16, ge=1)
    alpha: float = Field(32.0, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)  # set to 0 at load, with a warning: dropout would make the ratio noise
    target_modules: list[str] | str = "all-linear"


class ModelConfig(_Section):
    """The policy: a Hugging Face model directory, a ``.gguf`` file, ``pkg:PACKAGE/FILE``, a hub name ``owner/name``,
    or ``builtin:tiny-arith`` (the shipped one). See :mod:`priorl.models`."""

    path: str = "builtin:tiny-arith"
    gguf_file: str | None = None  # a GGUF file inside the directory model.path
    # The weights' dtype (and so the optimizer's). Keep float32 for training: an Adam update at 1e-5..1e-6 is below
    # bfloat16's resolution for a typical weight and is lost; for bf16 speed use precision: bf16-mixed.
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = "float32"
    # fp32: compute in the weights' dtype. bf16-mixed: float32 master weights and optimizer state, bfloat16
    # autocast for generation, the training forward/backward and evaluation; the output head, log-softmax, loss
    # and advantages in float32 (priorl.precision). Needs model.dtype float32; a device without fast bfloat16
    # falls back to fp32 with a warning.
    precision: Literal["fp32", "bf16-mixed"] = "fp32"
    device: str = "auto"  # "auto": cuda if available, else cpu
    lora: LoraConfig | None = None
    gradient_checkpointing: bool = False

    @model_validator(mode="after")
    def _precision_needs_float32(self) -> ModelConfig:
        if self.precision == "bf16-mixed" and self.dtype != "float32":
            raise ValueError(
                f"model.precision is bf16-mixed (float32 master weights, bfloat16 compute) but model.dtype is "
                f"{self.dtype!r}, which contradicts it: set model.dtype to float32, or model.precision to fp32 for "
                f"{self.dtype} weights"
            )
        return self


class DataConfig(_Section):
    """Training and held-out problems: a .jsonl / .parquet / .csv file, ``builtin:...`` or ``hf:NAME[:SPLIT]``.

    ``test: auto`` (the default) evaluates a builtin training set on its own held-out builtin
    (``builtin:arithmetic`` on ``builtin:arithmetic-test``, ``builtin:rules:MIX`` on
    ``builtin:rules-test:MIX``) and any other training set on a held-out split of itself:
    ``test_fraction`` of its problems, at most ``test_max``, drawn with a fixed seed (0) so every run and
    seed on the same data holds out the same problems; the rest train.
    ``test: null`` turns held-out evaluation off.

    ``validation`` is a second held-out set, for choosing settings (``priorl compare --grid``) without looking
    at the test set: ``null`` (the default: none), a file or builtin, or ``auto``: a builtin's own validation
    builtin (``builtin:rules:MIX`` -> ``builtin:rules-validation:MIX``, drawn from the held-out side, never
    pretrained or trained on, none of the test set's problems), else ``validation_fraction`` of the training
    set (at most ``validation_max``, fixed seed 1), which then no longer trains. Problems also in the test set
    are dropped from it. ``eval.split`` says which held-out set a run evaluates on.
    """

    train: str = "builtin:arithmetic"
    test: str | None = "auto"
    test_fraction: float = Field(0.1, gt=0, lt=1)
    test_max: int = Field(500, ge=1)
    validation: str | None = None
    validation_fraction: float = Field(0.1, gt=0, lt=1)
    validation_max: int = Field(500, ge=1)
    prompt_key: str = "prompt"
    answer_key: str = "answer"
    level_key: str | None = "level"
    levels: list[int] | None = None  # keep only problems of these levels (train and test); None: all
    # "auto": the tokenizer's chat template when it has one (prompt = user message); "none"; or a Jinja file.
    chat_template: str = "auto"
    system_prompt: str | None = None  # system message before each prompt (needs a chat template)
    # Prompts too long for the model's context (with generation.max_new_tokens): stop with an error that
    # names the first one ("error"), or drop them and report how many ("skip").
    overlong: Literal["error", "skip"] = "error"


class VerifierConfig(_Section):
    """How completions are scored: ``numeric``, ``exact``, ``math`` or ``module:function``."""

    name: str = "numeric"
    timeout_s: float = Field(5.0, gt=0)
    isolation: Literal["process", "none"] | None = None  # None: in-process for numeric/exact, workers otherwise
    workers: int | None = Field(None, ge=1)  # worker processes for isolated verifiers (default: up to 2)


class GenerationConfig(_Section):
    """Sampling of the G completions per problem."""

    group_size: int = Field(8, ge=2)  # completions per problem (G)
    temperature: float = Field(1.0, gt=0)  # sampling is from the full softmax(logits / temperature): no top-p / top-k
    max_new_tokens: int = Field(16, ge=1)
    sequences_per_call: int = Field(256, ge=1)  # sequences per generate() call, to bound memory
    # Stop strings: a completion ends with the token that completes the first one; the verifier's text ends
    # just before it (see priorl.generation.hf).
    stop: list[str] = Field(default_factory=list)
    # Prefill each group's prompt once and copy its KV cache to the G rows (same tokens and log-probs up to float
    # rounding; generation several times faster when prompts are longer than completions). False: every row.
    share_prompts: bool = True

    @field_validator("stop")
    @classmethod
    def _non_empty(cls, v: list[str]) -> list[str]:
        if any(not s for s in v):
            raise ValueError("stop strings must be non-empty")
        return v


class TrainConfig(_Section):
    """The policy update: clipped surrogate, optimizer, batch shape."""

    max_steps: int = Field(100, ge=0)
    max_rollouts: int | None = Field(None, ge=1)  # generation budget: stop once this many completions were made
    batch_size: int = Field(16, ge=1)  # problems per step (B); G completions each
    lr: float = Field(1e-5, gt=0)  # the default preset's tuned rate on SmolLM2-135M (RESULTS.md round 8)
    weight_decay: float = Field(0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    lr_warmup_steps: int = Field(0, ge=0)  # training steps of linear learning-rate warmup
    grad_clip: float | None = Field(1.0, gt=0)
    # Optimizer steps per training step: the step's batch (fresh + replayed) is shuffled and split into this many
    # near-equal mini-batches, one optimizer step each, every rollout used once (verl's ppo_mini_batch_size, TRL's
    # steps_per_generation).
    updates_per_step: int = Field(4, ge=1)
    micro_batch_size: int = Field(64, ge=1)  # sequences per forward/backward inside a mini-batch (accumulation)
    eps_low: float = Field(0.2, ge=0, lt=1)
    eps_high: float = Field(0.28, ge=0)
    dual_clip: float | None = Field(None, gt=1)  # e.g. 10: bound the loss of negative-advantage tokens
    advantage_scale: Literal["group", "none"] = "group"
    kl_beta: float = Field(0.0, ge=0)
    drop_zero_variance: bool = False  # drop the fresh rollouts of groups whose rewards are all equal
    # The old log-probs of the clipped ratio for fresh rollouts: "behavior" (recorded during generation) or
    # "recompute" (a no-grad training forward in the update's own micro-batches before its first optimizer step, as
    # verl does). In fp32 the two agree to ~1e-6; under bf16-mixed generation's token-at-a-time rounding differs
    # from the full forward's (SmolLM2: 0.010 nats a token, 0.3% of tokens start outside the clip range), and
    # recompute makes every first ratio exactly 1 for ~40% more update time (RESULTS.md round 10). Replay stores
    # the value used.
    old_logprobs: Literal["behavior", "recompute"] = "behavior"
    max_nonfinite_steps: int = Field(3, ge=1)  # steps in a row with a non-finite loss before the run stops
    # Who runs the loop: priorl's trainer, or TRL's GRPOTrainer on the same config (priorl.integrations.trl_engine:
    # what maps onto TRL and what it refuses; needs the trl extra; no checkpoints, a stopped run starts over).
    engine: Literal["priorl", "trl"] = "priorl"


DYNAMIC_KEYS = {False: (), True: ("max_rounds", "informative_target", "informative_share", "round_size")}


def _refuse_foreign(section: str, kind: Any, unused: list[str], users: list[str], kind_field: str = "kind") -> None:
    """A key set (to a non-default value) for a part that does not use it is an error that names it."""
    it = "it" if len(unused) == 1 else "them"
    fix = f"remove {it} or set {section}.{kind_field} to {' or '.join(users)}" if users else f"remove {it}"
    raise ValueError(
        f"{', '.join(f'{section}.{k}' for k in unused)} {'is' if len(unused) == 1 else 'are'} set, but "
        f"{section}.{kind_field} is {str(kind).lower() if isinstance(kind, bool) else repr(kind)}, which does "
        f"not use {it} (it would be silently ignored); {fix}"
    )


class _PartSection(_Section):
    """A part's section: ``kind`` plus the options of that kind, flat in YAML (``sampler: {kind:
    prioritized-pass, candidates: 3}``). The kinds and their options come from :mod:`priorl.registry`; after
    validation every option of the kind is an attribute (``config.sampler.candidates``), with its default where
    not set. A key of another kind set to a value other than its default is an error (it would be silently
    ignored); one at its default is dropped."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)
    _section: typing.ClassVar[str]

    kind: str

    @model_validator(mode="after")
    def _options_fit_kind(self) -> _PartSection:
        section, given = self._section, dict(self.__pydantic_extra__ or {})
        entry = None if section == "replay" and self.kind == registry.NO_REPLAY else registry.part(section, self.kind)
        mine = entry.options.model_fields if entry is not None else {}
        takes = registry.option_kinds(section)
        unknown = [k for k in given if k not in takes]
        if unknown:
            close = difflib.get_close_matches(unknown[0], list(takes), n=1, cutoff=0.6)
            hint = (
                f"; did you mean '{section}.{close[0]}'?" if close else f" (the {section} options: {', '.join(takes)})"
            )
            raise ValueError(f"unknown key '{section}.{unknown[0]}'{hint}")
        foreign = [k for k in given if k not in mine]
        unused = [k for k in foreign if all(given[k] != option_default(section, k, kind) for kind in takes[k])]
        if unused:
            users = [
                kind
                for kind in registry.PARTS[section]
                if set(unused) <= set(registry.part(section, kind).options.model_fields)
            ]
            _refuse_foreign(section, self.kind, unused, users)
        mine_given = {k: v for k, v in given.items() if k in mine}
        options = entry.validate(mine_given, section, f"{section} kind {self.kind!r}") if entry else None
        self.__pydantic_extra__ = options.model_dump() if options is not None else {}
        return self

    def options(self) -> dict[str, Any]:
        """The kind's options, every one of them (the constructor arguments :mod:`priorl.registry` builds with)."""
        return dict(self.__pydantic_extra__ or {})


def option_default(section: str, name: str, kind: str) -> Any:
    """The default of option ``name`` of ``kind`` (a registered kind of ``section`` that takes it)."""
    return registry.part(section, kind).options.model_fields[name].default


class SamplerConfig(_PartSection):
    """The problem sampler; the problems' levels come from the data. ``kind`` names an entry of
    :data:`priorl.registry.SAMPLERS`, and the section holds that kind's options:

    ``kind: uniform`` (:class:`~priorl.UniformSampler`, the default): problems in random order, GRPO's usual.
    ``kind: prioritized-pass`` (:class:`~priorl.PrioritizedPassSampler`): each batch is selected from the next
    ``candidates * batch_size`` problems of a shuffled pass over the data, ∝ ``floor + priority^selection_exponent``,
    with the priority from a decayed Beta posterior; nothing is parked and no problem repeats within a pass.
    ``kind: prioritized`` (:class:`~priorl.PrioritizedSampler`): the paper's form, top priorities from an indexed
    heap, solved and unsolved pools retested on a schedule. ``priorl train --print-config`` shows every option of
    the kind chosen; docs/config.md lists them all.
    """

    _section = "sampler"
    kind: str = "uniform"


class ReplayConfig(_PartSection):
    """The rollout replay buffer. ``kind: adv-replay`` (the default, :class:`~priorl.AdvReplayBuffer`): past
    rollouts drawn ∝ (|advantage| + eps)^priority_exponent, none older than ``tau_max`` steps; ``naive-replay``
    (:class:`~priorl.NaiveReplayBuffer`): drawn uniformly, no age limit; ``none``: fresh rollouts only. Each step
    trains on all fresh rollouts plus ``replay_ratio`` x as many replayed ones, from step ``warmup_steps`` on.
    The kinds and their options: :data:`priorl.registry.REPLAYS`."""

    _section = "replay"
    kind: str = "adv-replay"


class DynamicSamplingConfig(_Section):
    """DAPO dynamic sampling: keep only groups whose rewards differ, and generate up to ``max_rounds`` rounds per
    step to fill the batch with B of them (every extra completion counts against the generation budget).

    With ``informative_target`` (K) or ``informative_share`` (K as a share of ``train.batch_size`` B), and/or
    ``round_size`` (b), it is the K-of-B step (docs/sampler.md): rounds of b problems, each round's problems chosen
    by the sampler from what it knows then (a prioritized sampler picks the ones it predicts informative), until K
    informative groups are in hand; the step trains on every informative group it generated (between K and
    K + b - 1, fewer only when ``max_rounds`` ends it first)."""

    enabled: bool = False
    max_rounds: int = Field(3, ge=1)
    informative_target: int | None = Field(None, ge=1)  # K groups; None: train.batch_size, keeping the first B (DAPO)
    informative_share: float | None = Field(None, gt=0, le=1)  # K = ceil(share x B); instead of informative_target
    round_size: int | None = Field(None, ge=1)  # b problems per round; None: B/4 in the K-of-B step, B in DAPO's

    @model_validator(mode="after")
    def _keys_fit_kind(self) -> DynamicSamplingConfig:
        fields = type(self).model_fields
        applies = DYNAMIC_KEYS[self.enabled]
        unused = [k for k in fields if k != "enabled" and k not in applies and getattr(self, k) != fields[k].default]
        if unused:
            _refuse_foreign("dynamic_sampling", self.enabled, unused, ["true"] if not self.enabled else [], "enabled")
        if self.informative_target is not None and self.informative_share is not None:
            raise ValueError(
                f"dynamic_sampling.informative_target ({self.informative_target}) and "
                f"dynamic_sampling.informative_share ({self.informative_share}) both set K: set one of them"
            )
        return self

    @property
    def k_of_b(self) -> bool:
        """Whether this is the K-of-B step (K or b set) rather than DAPO's dynamic sampling."""
        return self.enabled and (
            self.informative_target is not None or self.informative_share is not None or self.round_size is not None
        )

    def step_shape(self, batch_size: int) -> tuple[int, int]:
        """(K, b) for a batch size B: K informative groups per step, b problems per generation round.

        DAPO's form (no K-of-B key set) is (B, B). In the K-of-B step K is ``informative_target``, or
        ``ceil(informative_share x B)``, or B; b is ``round_size``, or ``ceil(B / 4)``.
        """
        if not self.k_of_b:
            return batch_size, batch_size
        if self.informative_target is not None:
            k = self.informative_target
        elif self.informative_share is not None:
            k = math.ceil(self.informative_share * batch_size - 1e-9)
        else:
            k = batch_size
        return k, self.round_size or math.ceil(batch_size / 4)


def foreign_keys(section: str, kind: Any) -> dict[str, Any]:
    """The keys of part ``section`` that ``kind`` does not use, with their defaults (``foreign_keys("replay",
    "none")`` is every replay option; an option several kinds take has the first one's default).
    :func:`priorl.presets.apply_preset` drops these."""
    if section == "dynamic_sampling":
        fields = DynamicSamplingConfig.model_fields
        return {k: f.default for k, f in fields.items() if k != "enabled" and k not in DYNAMIC_KEYS[kind]}
    mine = (
        set()
        if section == "replay" and kind == registry.NO_REPLAY
        else set(registry.part(section, kind).options.model_fields)
    )
    return {
        k: option_default(section, k, kinds[0]) for k, kinds in registry.option_kinds(section).items() if k not in mine
    }


class EvalConfig(_Section):
    """Held-out accuracy measured before and after training, and ``during`` times in between.

    ``every`` (steps) or ``every_rollouts`` (generated completions) set the schedule explicitly; when both
    are 0, ``during`` evaluations are spread evenly over ``train.max_steps`` (or ``train.max_rollouts``).
    Evaluation draws from its own random stream, so it never changes what training does.
    """

    # Which held-out set the evaluations use: "test" (data.test) or "validation" (data.validation: the
    # tuning runs of `priorl compare --grid` score settings there, so that the test set is used once).
    split: Literal["test", "validation"] = "test"
    before: bool = True
    after: bool = True
    during: int = Field(3, ge=0)
    every: int = Field(0, ge=0)
    every_rollouts: int = Field(0, ge=0)  # also evaluate each time this many more completions were generated
    max_problems: int | None = Field(None, ge=1)
    max_new_tokens: int | None = Field(None, ge=1)  # default: generation.max_new_tokens
    samples: int = Field(0, ge=0)  # > 0: also avg@k with k sampled completions at the training temperature
    sequences_per_call: int | None = Field(None, ge=1)  # per generate() call (default: generation.sequences_per_call)
    log_samples: int = Field(4, ge=0)  # held-out completions (prompt, answer, reward) kept per evaluation


class LoggingConfig(_Section):
    """Where metrics go besides metrics.jsonl."""

    tensorboard: bool = True
    wandb: bool = False
    wandb_project: str = "priorl"
    progress: bool = True
    # Without a terminal (a log file, CI, nohup): one plain progress line at least this many seconds apart
    # (and at the first and last step); 0 prints every step.
    progress_every_s: float = Field(30.0, ge=0)


class CheckpointConfig(_Section):
    """Checkpoints: every ``every`` steps and at least every ``every_minutes`` minutes (0 / null: off), at the
    end, and on SIGINT / SIGTERM; the newest ``keep_last`` are kept. The time bound caps the work a kill can
    lose whatever a step costs; a checkpoint never changes what training does."""

    every: int = Field(0, ge=0)
    every_minutes: float | None = Field(10.0, gt=0)
    keep_last: int = Field(2, ge=1)


class RunConfig(_Section):
    """Everything one ``priorl train`` run needs."""

    seed: int = 0
    out_dir: str = "runs/latest"
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    verifier: VerifierConfig = VerifierConfig()
    generation: GenerationConfig = GenerationConfig()
    train: TrainConfig = TrainConfig()
    # The parts. The defaults are the adv-replay preset (uniform problems + |A|-prioritized replay): at tuned
    # learning rates the only preset that needed fewer completions than tuned grpo, on the study's three mixes, in
    # TRL and on SmolLM2 (0.74-0.91x); problem-level prioritization did not beat tuned grpo anywhere
    # (benchmarks/RESULTS.md, rounds 7-8).
    sampler: SamplerConfig = SamplerConfig()
    replay: ReplayConfig = ReplayConfig()
    dynamic_sampling: DynamicSamplingConfig = DynamicSamplingConfig()
    eval: EvalConfig = EvalConfig()
    logging: LoggingConfig = LoggingConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()

    def parts(self) -> str:
        """The parts in a few words: ``sampler heap, replay adv``, with `` + dynamic sampling`` when on."""
        text = f"sampler {self.sampler.kind}, replay {self.replay.kind}"
        return text + (", dynamic sampling" if self.dynamic_sampling.enabled else "")


def get_key(obj: Any, dotted: str) -> Any:
    """The value of a dotted key (``"train.lr"``) of a config (or any nested attributes)."""
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


class ConfigError(ValueError):
    """A configuration problem, with a message that names the file and the key."""


def _section_model(annotation: Any) -> type[BaseModel] | None:
    """The section class a field holds (``LoraConfig`` for ``LoraConfig | None``), or None for a plain value."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _section_model(arg)
        if found is not None:
            return found
    return None


def _section_at(path: tuple[str, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = RunConfig
    for part in path:
        field = model.model_fields.get(part) if model is not None else None
        if field is None:
            return None
        model = _section_model(field.annotation)
    return model


def config_keys(model: type[BaseModel] = RunConfig, prefix: str = "") -> list[str]:
    """Every dotted key of the config, sections included (``train``, ``train.lr``, ...)."""
    keys = []
    for name, field in model.model_fields.items():
        keys.append(prefix + name)
        sub = _section_model(field.annotation)
        if sub is not None:
            keys += config_keys(sub, f"{prefix}{name}.")
    if issubclass(model, _PartSection):  # the options of every registered kind
        keys += [prefix + name for name in registry.option_kinds(model._section)]
    return keys


def suggest_key(loc: tuple) -> str:
    """A hint for an unknown key: the closest key of its section, or the sections that have a key of that name."""
    parts = tuple(str(p) for p in loc)
    parent, name = parts[:-1], parts[-1]
    section = _section_at(parent)
    if section is not None:
        close = difflib.get_close_matches(name, list(section.model_fields), n=1, cutoff=0.6)
        if close:
            return f"; did you mean '{'.'.join((*parent, close[0]))}'?"
    keys = config_keys()
    same = [k for k in keys if k.rsplit(".", 1)[-1] == name and k != ".".join(parts)]
    if same:
        return f"; it belongs in a section: {' or '.join(repr(k) for k in same)}"
    close = difflib.get_close_matches(name, sorted({k.rsplit(".", 1)[-1] for k in keys}), n=1, cutoff=0.75)
    if close:
        return f"; did you mean {' or '.join(repr(k) for k in keys if k.rsplit('.', 1)[-1] == close[0])}?"
    return " (priorl train --print-config lists every key)"


def _format_validation(exc: ValidationError, where) -> str:
    """One line per error; ``where(loc)`` names the source of the key at ``loc`` (a file, an override, a flag)."""
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        at = where(tuple(str(p) for p in err["loc"]))
        if err["type"] == "extra_forbidden":
            lines.append(f"{at}: unknown key '{key}'{suggest_key(err['loc'])}")
        else:
            value = err.get("input")
            shown = f" (got {value!r})" if not isinstance(value, dict) else ""
            msg = err["msg"].removeprefix("Value error, ")
            if not err["loc"] or msg.startswith((f"{key}.", f"unknown key '{key}.")):  # a part's message names its key
                lines.append(f"{at}: {msg}")
            else:
                lines.append(f"{at}: {key}: {msg}{shown}")
    return "; ".join(lines)


def _sources(base: str, overrides: list[str], origins: dict[str, str]):
    """``where(loc)`` for :func:`_format_validation`: the override that set the key at ``loc`` (the last one),
    else ``base`` (the file, or the defaults, with the preset) with the overrides inside ``loc``'s section."""
    set_by = []
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        set_by.append((tuple(key.split(".")), origins.get(key, f"--set {item}")))

    def where(loc: tuple[str, ...]) -> str:
        exact = [label for parts, label in set_by if loc and loc[: len(parts)] == parts]
        if exact:
            return exact[-1]
        inside = list(dict.fromkeys(label for parts, label in set_by if parts[: len(loc)] == loc))
        return f"{base} with {', '.join(inside)}" if inside else base

    return where


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``key.sub=value`` overrides (values parsed as YAML) to a nested dict, in order."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. train.lr=1e-5")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"--set {item!r}: empty key")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: value is not valid YAML ({exc})") from None
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: '{part}' is not a section")
            node = child
        node[parts[-1]] = value
    return data


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    *,
    origins: dict[str, str] | None = None,
) -> RunConfig:
    """Read a YAML config (or the defaults), apply the ``--set`` style overrides, validate. Raises ConfigError with
    one message, which names where the bad key came from: the file, or the override that set it, shown as
    ``origins[key]`` (e.g. ``--max-steps 5`` for an override a command-line flag made) or else as ``--set
    key=value``. A run with a named preset laid over the file: :func:`priorl.presets.preset_config`."""
    data, where = read_config(path)
    return validate_config(data, overrides, where=where, origins=origins)


def read_config(path: str | Path | None) -> tuple[dict, str]:
    """(the config file's sections as a dict, where they came from): ``({}, "defaults")`` for no file. Raises
    ConfigError naming the file (and the line of a YAML error)."""
    if path is None:
        return {}, "defaults"
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        loaded = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config file {path}{line}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path}: expected a mapping of sections, got {type(loaded).__name__}")
    return loaded, str(path)


def validate_config(
    data: dict, overrides: list[str] | None = None, *, where: str = "defaults", origins: dict[str, str] | None = None
) -> RunConfig:
    """``data`` with ``overrides`` applied, validated; a ConfigError names the key's source (``where`` or the
    override)."""
    if overrides:
        data = apply_overrides(data, overrides)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation(exc, _sources(where, overrides or [], origins or {}))) from None


def default_value(key: str) -> Any:
    """The built-in default of a dotted key, e.g. ``default_value("train.batch_size") == 16``."""
    section, _, name = key.partition(".")
    if section in registry.PARTS and name in registry.option_kinds(section):  # a part's option: its first kind's
        return option_default(section, name, registry.option_kinds(section)[name][0])
    node: Any = RunConfig()
    for part in key.split("."):
        node = getattr(node, part)
    return node


def _local_path(spec: str | None, base: Path, *, suffix_sep: str | None = None) -> str | None:
    """``spec`` made absolute when it names an existing local file or directory relative to ``base``."""
    if not spec or spec == "auto" or spec.startswith(("builtin:", "hf:")):
        return spec
    path, tail = spec, ""
    if suffix_sep is not None:  # "file.py:function"
        path, sep, fn = spec.rpartition(suffix_sep)
        if not sep or not path.endswith(".py"):
            return spec
        tail = sep + fn
    p = Path(path).expanduser()
    if p.is_absolute() or not (base / p).exists():
        return spec
    return os.path.abspath(base / p) + tail


def resolve_paths(config: RunConfig, base: str | Path | None = None) -> RunConfig:
    """Make the local files a run reads absolute (data, a local model directory, a ``file.py:function``
    verifier), so that a run directory's config.yaml works from any working directory. Names that are not
    existing local paths (``builtin:...``, ``hf:...``, hub names, missing files) are left as they are."""
    base = Path.cwd() if base is None else Path(base)
    data = config.model_dump()
    data["data"]["train"] = _local_path(data["data"]["train"], base)
    data["data"]["test"] = _local_path(data["data"]["test"], base)
    data["data"]["validation"] = _local_path(data["data"]["validation"], base)
    data["model"]["path"] = _local_path(data["model"]["path"], base)
    data["verifier"]["name"] = _local_path(data["verifier"]["name"], base, suffix_sep=":")
    return RunConfig.model_validate(data)


def dump_config(config: RunConfig) -> str:
    """The resolved config as YAML (every key, defaults included)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def diff_configs(a: RunConfig, b: RunConfig) -> list[str]:
    """Dotted keys whose values differ between two configs."""
    out: list[str] = []

    def walk(x: Any, y: Any, prefix: str) -> None:
        if isinstance(x, dict) and isinstance(y, dict):
            for k in sorted(set(x) | set(y)):
                walk(x.get(k), y.get(k), f"{prefix}{k}.")
        elif x != y:
            out.append(prefix.rstrip("."))

    walk(a.model_dump(mode="json"), b.model_dump(mode="json"), "")
    return out


# Config keys a resumed run may change (with ``allow_change``): they alter no state already saved, and evaluation
# runs on its own random stream, so none of them changes what training does.
SAFE_RESUME_CHANGES = (
    "train.max_steps", "train.max_rollouts", "checkpoint.every", "checkpoint.every_minutes",
    "checkpoint.keep_last", "eval.before", "eval.after", "eval.during", "eval.every", "eval.every_rollouts",
    "eval.max_problems", "eval.max_new_tokens", "eval.samples", "eval.log_samples", "logging.tensorboard",
    "logging.wandb", "logging.wandb_project", "logging.progress", "logging.progress_every_s",
)  # fmt: skip


def check_resume_config(saved: RunConfig, config: RunConfig, *, allow_change: bool, where: str) -> list[str]:
    """Refuse to resume the run whose config was ``saved`` with ``config`` when they differ in a key outside
    :data:`SAFE_RESUME_CHANGES`, or in a safe key without ``allow_change``; returns the keys that changed.
    Local paths are compared resolved, and ``out_dir`` not at all (a run directory may be spelled many ways)."""
    changed = [k for k in diff_configs(resolve_paths(saved), resolve_paths(config)) if k != "out_dir"]
    unsafe = [k for k in changed if k not in SAFE_RESUME_CHANGES]
    if unsafe:
        shown = ", ".join(f"{k} ({get_key(saved, k)!r} there, {get_key(config, k)!r} now)" for k in unsafe)
        raise ConfigError(
            f"{where}: the config differs from the run's in {shown}; these cannot change in a resumed run"
        )
    if changed and not allow_change:
        raise ConfigError(
            f"{where}: the config differs from the run's in {', '.join(changed)}; pass --allow-change "
            "to accept these safe changes"
        )
    return changed
