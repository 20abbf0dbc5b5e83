"""The model side of a run, built from its config once, for training and for evaluation alike: the verifier,
the tokenizer, the prompt formatter, the policy and its generator. :class:`~priorl.grpo.trainer.Trainer` and
``priorl eval`` (:mod:`priorl.grpo.model_eval`) both build them here, so a checkpoint is evaluated exactly as its
run evaluated it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from priorl.config import RunConfig


@dataclass
class Policy:
    """A tokenizer, the prompt formatter over it, the model (``trainable`` or frozen for evaluation), and the
    precision it computes in (:class:`priorl.precision.Precision`, with the warning of a fallback to fp32)."""

    tokenizer: Any
    formatter: Any  # priorl.data.PromptFormatter: prompt -> token ids (chat template, system prompt)
    model: Any
    precision: Any = None  # priorl.precision.Precision
    notes: list[str] = field(default_factory=list)  # what the run should be told once (precision fallback, dtype)


def build_verifier(config: RunConfig):
    """The verifier ``verifier.name`` names, with its time-out, isolation and workers (close it when done)."""
    from priorl.rewards import make_verifier

    v = config.verifier
    return make_verifier(v.name, timeout_s=v.timeout_s, isolation=v.isolation, workers=v.workers)


def build_policy(config: RunConfig, *, trainable: bool = True) -> Policy:
    """Load ``model`` (path, dtype, device, LoRA) and its tokenizer; the formatter applies ``data.chat_template``
    and ``data.system_prompt``. Under ``model.precision: bf16-mixed`` (resolved for the model's device) the
    output head computes in float32 (:func:`priorl.precision.keep_head_float32`)."""
    from priorl.data import PromptFormatter
    from priorl.models import load_policy, load_tokenizer
    from priorl.precision import keep_head_float32, resolve_precision

    tokenizer = load_tokenizer(config.model)
    formatter = PromptFormatter(tokenizer, config.data.chat_template, config.data.system_prompt)
    model = load_policy(config.model, trainable=trainable)
    device = next(model.parameters()).device
    precision, fallback = resolve_precision(config.model.precision, device)
    notes = [fallback] if fallback else []
    if precision.mixed:
        keep_head_float32(model)
    if trainable and config.model.dtype in ("bfloat16", "float16"):
        notes.append(
            f"model.dtype is {config.model.dtype}: the weights and the optimizer state are {config.model.dtype}, so "
            f"an update smaller than the weight's resolution (2^-8 relative for bfloat16) is lost, as most Adam "
            f"updates at lr {config.train.lr:g} are; train with model.dtype float32 and model.precision bf16-mixed"
        )
    return Policy(tokenizer, formatter, model, precision, notes)


def build_generator(config: RunConfig, policy: Policy):
    """The Hugging Face generator of ``policy`` with the ``generation`` section's settings."""
    from priorl.generation import HFGenerator

    g = config.generation
    return HFGenerator(
        policy.model, policy.tokenizer, temperature=g.temperature, max_new_tokens=g.max_new_tokens,
        batch_size=g.sequences_per_call, stop=g.stop, encode=policy.formatter.encode, share_prompts=g.share_prompts,
        autocast=policy.precision.autocast if policy.precision is not None else None,
    )  # fmt: skip
