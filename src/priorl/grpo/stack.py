"""The model side of a run, built from its config once, for training and for evaluation alike: the verifier,
the tokenizer, the prompt formatter, the policy and its generator. :class:`~priorl.grpo.trainer.Trainer` and
``priorl eval`` (:mod:`priorl.grpo.model_eval`) both build them here, so a checkpoint is evaluated exactly as its
run evaluated it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from priorl.config import RunConfig


@dataclass
class Policy:
    """A tokenizer, the prompt formatter over it, and the model (``trainable`` or frozen for evaluation)."""

    tokenizer: Any
    formatter: Any  # priorl.data.PromptFormatter: prompt -> token ids (chat template, system prompt)
    model: Any


def build_verifier(config: RunConfig):
    """The verifier ``verifier.name`` names, with its time-out, isolation and workers (close it when done)."""
    from priorl.rewards import make_verifier

    v = config.verifier
    return make_verifier(v.name, timeout_s=v.timeout_s, isolation=v.isolation, workers=v.workers)


def build_policy(config: RunConfig, *, trainable: bool = True) -> Policy:
    """Load ``model`` (path, dtype, device, LoRA) and its tokenizer; the formatter applies ``data.chat_template``
    and ``data.system_prompt``."""
    from priorl.data import PromptFormatter
    from priorl.models import load_policy, load_tokenizer

    tokenizer = load_tokenizer(config.model)
    formatter = PromptFormatter(tokenizer, config.data.chat_template, config.data.system_prompt)
    return Policy(tokenizer, formatter, load_policy(config.model, trainable=trainable))


def build_generator(config: RunConfig, policy: Policy):
    """The Hugging Face generator of ``policy`` with the ``generation`` section's settings."""
    from priorl.generation import HFGenerator

    g = config.generation
    return HFGenerator(
        policy.model, policy.tokenizer, temperature=g.temperature, max_new_tokens=g.max_new_tokens,
        batch_size=g.sequences_per_call, stop=g.stop, encode=policy.formatter.encode, share_prompts=g.share_prompts,
    )  # fmt: skip
