"""The parts a run can be made of, by kind: one table from a config kind to its class and its options.

``sampler.kind`` and ``replay.kind`` name an entry of :data:`SAMPLERS` and :data:`REPLAYS` (``replay.kind: none``
is no buffer). Each entry holds the class, the options model a config may set on it
(:class:`~priorl.options.PartOptions`, a description on every field) and a one-line summary. The run config,
the trainer (and so ``train.engine: trl``), the verl adapter, ``priorl bench`` and the docs read this table; a
kind's name is the preset's that uses it alone.

Adding a sampler is one module (the class and its options model) and one line in :data:`SAMPLERS`
(docs/code-map.md lists what else to touch: tests and docs); ``tests/test_registry.py`` fails when a
registered kind is missing from a place that must know it.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from priorl.options import PartOptions
from priorl.replay.buffer import AdvReplayBuffer, AdvReplayOptions, NaiveReplayBuffer, NaiveReplayOptions
from priorl.sampling.experimental import ExperimentalPrioritizedOptions, ExperimentalPrioritizedSampler
from priorl.sampling.prioritized import PrioritizedOptions, PrioritizedSampler
from priorl.sampling.prioritized_pass import PrioritizedPassOptions, PrioritizedPassSampler
from priorl.sampling.uniform import UniformSampler

NO_REPLAY = "none"  # replay.kind for no buffer: fresh rollouts only


@dataclass(frozen=True)
class Part:
    """One kind of part: its class, the options a config may set on it, and what it is in a few words."""

    cls: type
    options: type[PartOptions]
    summary: str

    def validate(self, options: Mapping[str, Any], where: str, what: str) -> PartOptions:
        """``options`` checked by :attr:`options`; a ValueError names each bad key under ``where`` (``sampler``,
        ``priorl.replay``) with its value, or, for a key the kind does not take, ``what`` the kind is (``replay kind
        'adv-replay'``) and the options it takes."""
        try:
            return self.options.model_validate(dict(options))
        except ValidationError as exc:
            lines = []
            for err in exc.errors():
                key = ".".join(str(p) for p in err["loc"])
                msg = err["msg"].removeprefix("Value error, ")
                if err["type"] == "extra_forbidden":
                    takes = ", ".join(self.options.model_fields) or "none"
                    lines.append(f"{where}.{key}: not an option of {what} (its options: {takes})")
                else:
                    lines.append(f"{where}.{key}: {msg} (got {err.get('input')!r})" if key else f"{where}.{msg}")
            raise ValueError("; ".join(lines)) from None

    def build(self, options: Mapping[str, Any] | PartOptions | None = None, /, **context: Any) -> Any:
        """An instance: ``options`` (validated by :attr:`options`) plus the ``context`` arguments the class takes
        (``num_problems``, ``seed``, ``levels``, ``codec``: those its constructor does not accept are left out)."""
        if not isinstance(options, PartOptions):
            options = self.options.model_validate(dict(options or {}))
        takes = inspect.signature(self.cls).parameters
        args = {k: v for k, v in context.items() if k in takes}
        return self.cls(**args, **options.model_dump())


SAMPLERS: dict[str, Part] = {
    "uniform": Part(UniformSampler, PartOptions, "problems in random order, each once per pass: GRPO's usual"),
    "prioritized-pass": Part(
        PrioritizedPassSampler, PrioritizedPassOptions,
        "each batch selected from the next candidates of a shuffled pass by P(informative group)",
    ),
    "prioritized": Part(
        PrioritizedSampler, PrioritizedOptions, "the paper's heap: top-B p(1-p), solved and unsolved retested"
    ),
    "experimental-prioritized": Part(
        ExperimentalPrioritizedSampler, ExperimentalPrioritizedOptions,
        "the heap with another estimator (ema, window, beta) or selection (stochastic, thompson)",
    ),
}  # fmt: skip

REPLAYS: dict[str, Part] = {
    "naive-replay": Part(NaiveReplayBuffer, NaiveReplayOptions, "past rollouts drawn uniformly, no age limit"),
    "adv-replay": Part(
        AdvReplayBuffer, AdvReplayOptions, "past rollouts drawn ∝ (|advantage| + eps)^priority_exponent, age <= tau_max"
    ),
}

PARTS: dict[str, dict[str, Part]] = {"sampler": SAMPLERS, "replay": REPLAYS}


def kinds(section: str) -> list[str]:
    """The kinds ``section`` (``"sampler"`` or ``"replay"``) accepts, ``none`` included for replay."""
    return list(PARTS[section]) + ([NO_REPLAY] if section == "replay" else [])


def part(section: str, kind: str) -> Part:
    """The registered part of ``section`` named ``kind``; a ValueError names the kinds there are (and the closest)."""
    table = PARTS[section]
    if kind in table:
        return table[kind]
    close = difflib.get_close_matches(str(kind), kinds(section), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    known = ", ".join(repr(k) for k in kinds(section))
    raise ValueError(f"{section}.kind {kind!r} is not a kind of {section}{hint} (the kinds: {known})")


def build_part(section: str, kind: str, options: Mapping[str, Any], where: str, **context: Any) -> Any:
    """``part(section, kind).build(options, **context)`` for an adapter's options: a ValueError names ``where``
    (e.g. ``priorl.sampler``) with the bad option and its value, or the options the kind takes."""
    try:
        entry = part(section, kind)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return entry.build(entry.validate(options, where, f"{section} kind {kind!r}"), **context)


def option_kinds(section: str) -> dict[str, list[str]]:
    """Each option of ``section`` with the kinds that take it, in registry order."""
    out: dict[str, list[str]] = {}
    for kind, entry in PARTS[section].items():
        for name in entry.options.model_fields:
            out.setdefault(name, []).append(kind)
    return out


def _type_text(field) -> str:
    """A field's type and bounds in words: ``float in [0, 1]``, ``int >= 1 or null``, ```a` \\| `b```."""
    import typing

    union = typing.get_origin(field.annotation) is not typing.Literal
    args = typing.get_args(field.annotation) if union else ()
    nullable = type(None) in args
    base = next((a for a in args if a is not type(None)), field.annotation) if args else field.annotation
    if typing.get_origin(base) is typing.Literal:
        return " \\| ".join(f"`{v}`" for v in typing.get_args(base))
    text = getattr(base, "__name__", str(base))
    bound = {k: getattr(m, k) for m in field.metadata for k in ("ge", "gt", "le", "lt") if hasattr(m, k)}
    if ("ge" in bound or "gt" in bound) and ("le" in bound or "lt" in bound):
        lo = f"[{bound['ge']:g}" if "ge" in bound else f"({bound['gt']:g}"
        hi = f"{bound['le']:g}]" if "le" in bound else f"{bound['lt']:g})"
        text += f" in {lo}, {hi}"
    elif "ge" in bound or "gt" in bound:
        text += f" >= {bound['ge']:g}" if "ge" in bound else f" > {bound['gt']:g}"
    return text + (" or null" if nullable else "")


def options_markdown(section: str) -> str:
    """The options of every kind of ``section`` as a markdown table (docs/config.md holds this, tested)."""
    rows = ["| key | type | default | kinds | meaning |", "|---|---|---|---|---|"]
    for name, users in option_kinds(section).items():
        fields = [PARTS[section][k].options.model_fields[name] for k in users]
        defaults = {k: f.default for k, f in zip(users, fields, strict=True)}
        if len(set(map(repr, defaults.values()))) == 1:
            default = f"`{'null' if fields[0].default is None else fields[0].default}`"
        else:
            default = ", ".join(f"{k}: `{v}`" for k, v in defaults.items())
        meaning = " / ".join(dict.fromkeys(f.description for f in fields)).replace("|", "\\|")
        rows.append(f"| `{section}.{name}` | {_type_text(fields[0])} | {default} | {', '.join(users)} | {meaning} |")
    return "\n".join(rows)
