"""Load the policy (and an optional frozen reference) from a Hugging Face directory or hub name."""

from __future__ import annotations

from pathlib import Path

import torch

from priorl.config import ModelConfig

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_model_path(path: str) -> str:
    """``builtin:NAME`` -> the model NAME shipped in the package; anything else is passed through."""
    if path.startswith("builtin:"):
        from priorl.assets import MODELS, model_path

        name = path.removeprefix("builtin:")
        if name not in MODELS:
            raise ValueError(
                f"unknown builtin model {path!r}; the shipped ones are builtin:tiny-arith, builtin:tiny-reversal"
            )
        return str(model_path(name))
    return path


def resolve_device(device: str) -> torch.device:
    """``auto``: CUDA when available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _quiet_transformers() -> None:
    # priorl draws its own progress; the per-shard "Loading weights" bars would only add noise.
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def load_tokenizer(cfg: ModelConfig):
    """The tokenizer, with a pad token (EOS when the tokenizer has none)."""
    from transformers import AutoTokenizer

    _quiet_transformers()
    path = resolve_model_path(cfg.path)
    try:
        tok = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot load a tokenizer from {cfg.path!r}: {exc}") from None
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def load_policy(cfg: ModelConfig, *, trainable: bool = True):
    """The causal LM on its device, in the configured dtype, with LoRA adapters when asked."""
    from transformers import AutoModelForCausalLM

    _quiet_transformers()
    path = resolve_model_path(cfg.path)
    device = resolve_device(cfg.device)
    dtype = "auto" if cfg.dtype == "auto" else _DTYPES[cfg.dtype]
    if not Path(path).exists() and "/" not in path:
        raise ValueError(f"model {cfg.path!r} is neither a local directory nor a hub name (owner/name)")
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot load a causal LM from {cfg.path!r}: {exc}") from None
    model.to(device)
    if trainable and cfg.lora is not None:
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError:
            raise ValueError("model.lora needs peft: pip install 'priorl[peft]'") from None
        lora = LoraConfig(
            r=cfg.lora.r,
            lora_alpha=cfg.lora.alpha,
            lora_dropout=cfg.lora.dropout,
            target_modules=cfg.lora.target_modules,
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, lora)
    if trainable and cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if trainable:
        model.train()
    else:
        model.eval()
        model.requires_grad_(False)
    return model
