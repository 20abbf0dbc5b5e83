"""Files shipped inside the package: the tiny character-level base model ``tiny-arith``.

``tiny-arith`` is a 0.9 M-parameter Llama-style model in Hugging Face format (float32), pretrained by
:func:`priorl.pretrain.pretrain` on the train side of ``builtin:arithmetic`` and left half-trained on
purpose, so that GRPO has something to learn. ``priorl_pretrain.json`` beside the weights records the
exact arguments and the SHA-256 of ``model.safetensors``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["default_model_path"]

_ASSETS = Path(__file__).resolve().parent


def default_model_path() -> Path:
    """Directory of the shipped tiny base model; pass it to ``AutoModelForCausalLM.from_pretrained``."""
    return _ASSETS / "tiny-arith"
