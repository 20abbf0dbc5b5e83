"""A run's problems: the training set and the held-out set its config names, ready for the trainer.

:func:`run_problems` reads ``data.train`` and ``data.test`` (``auto``: a builtin's own held-out builtin, else a
seeded split of the training set), keeps ``data.levels`` and the first ``eval.max_problems`` held-out problems,
and checks the batch fits; it needs no model, so a bad dataset stops a run before anything is loaded.
:func:`fit_context` then applies ``data.overlong`` with the model's tokenizer. ``priorl train`` and
``priorl eval`` of a run directory both use these, so a run is evaluated on the held-out set it trained with.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from priorl.data.loading import BUILTIN_SPECS, load_problems
from priorl.data.split import SPLIT_SEED, held_out_split
from priorl.types import Problem

if TYPE_CHECKING:
    from priorl.config import RunConfig


@dataclass
class RunProblems:
    """The problems of one run. ``held_out`` says in words what the held-out set is (for logs and summary.json)."""

    train: list[Problem]
    test: list[Problem]  # the held-out set the run evaluates on: data.test, or data.validation (eval.split)
    held_out: str


def run_problems(config: RunConfig) -> RunProblems:
    """The training and held-out problems ``config.data`` names (see :class:`priorl.config.DataConfig`).

    Raises ``ValueError`` (or :class:`~priorl.data.DatasetError`) naming the file, field or key when the data
    cannot be used: a bad file, no problem of ``data.levels``, or fewer problems than ``train.batch_size``.
    """
    d = config.data
    keys = dict(prompt_key=d.prompt_key, answer_key=d.answer_key, level_key=d.level_key)
    train = load_problems(d.train, **keys)
    train, test, held_out = _held_out_set(config, train, keys)
    train, validation, validation_what = _validation_set(config, train, test, keys)
    if config.eval.split == "validation":
        if validation is None:
            raise ValueError(
                "eval.split is 'validation' but data.validation is null: set data.validation (auto, a file or a "
                "builtin) or evaluate on the test set (eval.split=test)"
            )
        test, held_out = validation, f"validation set (eval.split=validation): {validation_what}"
    if d.levels is not None:
        train = select_levels(train, d.levels, d.train)
        test = select_levels(test, d.levels, d.test)
        held_out += f"; levels {d.levels} only (data.levels)"
    limit = config.eval.max_problems
    if limit is not None and len(test) > limit:
        held_out += f"; the first {limit} evaluated (eval.max_problems)"
        test = test[:limit]
    B = config.train.batch_size
    if B > len(train):
        split = " after the held-out split" if held_out.startswith("split") else ""
        raise ValueError(
            f"train.batch_size {B} is larger than the {len(train)} training problems in {d.train}{split}; pass a "
            f"smaller --batch-size (at most {len(train)})"
        )
    return RunProblems(train, test, held_out)


def _held_out_set(config: RunConfig, train: list[Problem], keys: dict) -> tuple[list, list, str]:
    """(train problems, held-out problems, what the held-out set is) for ``data.test``."""
    d = config.data
    test = d.test
    if test == "auto" and d.train.startswith("builtin:"):
        test = builtin_test_set(d.train) or test
    if test is None:
        return train, [], "none (data.test is null)"
    if test != "auto":
        problems = load_problems(test, **keys)
        return train, problems, f"{test} ({len(problems)} problems)"
    kept, held = held_out_split(train, d.test_fraction, d.test_max)
    what = (
        f"split from {d.train}: {len(held)} problems ({d.test_fraction:.0%}, at most {d.test_max}, seed "
        f"{SPLIT_SEED}) held out, the other {len(kept)} train; --test FILE evaluates on a file instead"
    )
    return kept, held, what


def _validation_set(config: RunConfig, train: list, test: list, keys: dict) -> tuple[list, list | None, str]:
    """(train problems, validation problems or None, what the validation set is) for ``data.validation``.

    ``auto`` on a builtin with a validation builtin takes it; otherwise ``auto`` holds out a seeded share of the
    training set (seed ``SPLIT_SEED + 1``), which then no longer trains, whatever ``eval.split`` is, so a tuning
    run and an evaluation run of one study train on the same problems. Problems whose prompt is also in the test
    set are dropped from the validation set (and said)."""
    d = config.data
    spec = d.validation
    if spec is None:
        return train, None, "none"
    if spec == "auto" and d.train.startswith("builtin:"):
        spec = builtin_validation_set(d.train) or spec
    if spec == "auto":
        if len(train) < 2:
            raise ValueError(f"data.validation auto: {d.train} has too few training problems to hold some out")
        kept, held = held_out_split(train, d.validation_fraction, d.validation_max, seed=SPLIT_SEED + 1)
        train, validation = kept, held
        what = (
            f"split from {d.train}: {len(held)} problems ({d.validation_fraction:.0%}, at most {d.validation_max}, "
            f"seed {SPLIT_SEED + 1}) held out for validation, not trained on"
        )
    else:
        validation = load_problems(spec, **keys)
        what = f"{spec} ({len(validation)} problems)"
    in_test = {p.prompt for p in test}
    overlap = sum(p.prompt in in_test for p in validation)
    if overlap:
        validation = [
            dataclasses.replace(p, id=i) for i, p in enumerate(q for q in validation if q.prompt not in in_test)
        ]
        what += f"; {overlap} dropped that are also in the test set"
    if not validation:
        raise ValueError(f"data.validation {d.validation}: no validation problem left ({what})")
    return train, validation, what


def builtin_validation_set(train: str) -> str | None:
    """The validation builtin of a builtin training set (``builtin:rules:solved=0.1`` ->
    ``builtin:rules-validation:solved=0.1``), or None when the builtin has none."""
    test = builtin_test_set(train)
    if test is None:
        return None
    name, _, mix = test.partition(":")[2].partition(":")
    candidate = f"builtin:{name.removesuffix('-test')}-validation"
    return (candidate + (f":{mix}" if mix else "")) if candidate in BUILTIN_SPECS else None


def builtin_test_set(train: str) -> str | None:
    """The held-out builtin of a builtin training set (``builtin:rules:solved=0.1`` ->
    ``builtin:rules-test:solved=0.1``: the same difficulty mix, its own size), or None."""
    name, _, options = train.partition(":")[2].partition(":")
    if f"builtin:{name}-test" not in BUILTIN_SPECS:
        return None
    mix = ",".join(o for o in options.split(",") if o.split("=")[0].strip() in ("solved", "unsolved"))
    return f"builtin:{name}-test" + (f":{mix}" if mix else "")


def select_levels(problems: list[Problem], levels: list[int], spec: str | None) -> list[Problem]:
    """The problems of the given levels, re-numbered 0..M-1 (``data.levels``)."""
    kept = [dataclasses.replace(p, id=i) for i, p in enumerate(q for q in problems if q.level in levels)]
    if problems and not kept:
        raise ValueError(f"data.levels {levels}: {spec} has no problem of these levels")
    return kept


def fit_context(problems: list[Problem], tokenizer, model, config: RunConfig, encode=None) -> tuple[list, int]:
    """Apply ``data.overlong`` to prompts that leave no room for ``max_new_tokens`` in the model's context.

    Returns the problems to use (re-numbered 0..M-1 when some are dropped) and how many were dropped.
    """
    limit = getattr(model.config, "max_position_embeddings", None)
    if not problems or limit is None:
        return problems, 0
    room = limit - config.generation.max_new_tokens
    prompts = [p.prompt for p in problems]
    lengths = [len(ids) for ids in (encode(prompts) if encode else tokenizer(prompts)["input_ids"])]
    over = [i for i, n in enumerate(lengths) if n > room]
    if not over:
        return problems, 0
    first = problems[over[0]]
    if config.data.overlong == "error":
        raise ValueError(
            f"{first.source or 'problem ' + str(first.id)}: field '{config.data.prompt_key}' is {lengths[over[0]]} "
            f"tokens, more than the {room} the model's context leaves after generation.max_new_tokens "
            f"({limit} - {config.generation.max_new_tokens}); {len(over)} prompt(s) are too long. "
            "Set data.overlong=skip to drop them."
        )
    dropped = set(over)
    kept = [p for i, p in enumerate(problems) if i not in dropped]
    return [dataclasses.replace(p, id=i) for i, p in enumerate(kept)], len(over)
