"""Files shipped inside the package: the tiny character-level base models.

- ``tiny-arith`` (``builtin:tiny-arith``): a 0.9 M-parameter Llama-style model in Hugging Face format
  (float32), pretrained by :func:`priorl.pretrain.pretrain` on the train side of ``builtin:arithmetic`` and
  left half-trained on purpose, so that GRPO has something to learn. It plateaus quickly.
- ``tiny-rules`` (``builtin:tiny-rules``): the same shape, pretrained on the rules testbed
  (``builtin:rules``) with tag-specific slips, so that it often samples the right answer without
  saying it reliably: the base model of priorl's study (configs/study.yaml).

``configs/`` holds the study configs (``study``, ``smollm2-study``): the canonical copies, so that ``priorl
compare`` finds its default config outside a clone; a clone's ``configs/*.yaml`` of the same names link here.

``priorl_pretrain.json`` beside each model's weights records the exact recipe and arguments and the
SHA-256 of ``model.safetensors``; ``priorl pretrain --recipe NAME`` reproduces them.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CONFIGS", "MODELS", "config_path", "default_model_path", "model_path"]

_ASSETS = Path(__file__).resolve().parent
MODELS = ("tiny-arith", "tiny-rules")
CONFIGS = ("study", "study-r7", "study-r3", "smollm2-study")


def config_path(name: str) -> Path:
    """The shipped study config ``name`` (one of :data:`CONFIGS`), e.g. the default of ``priorl compare -c``."""
    if name not in CONFIGS:
        raise ValueError(f"unknown shipped config {name!r}; the shipped ones are {', '.join(CONFIGS)}")
    return _ASSETS / "configs" / f"{name}.yaml"


def model_path(name: str) -> Path:
    """Directory of the shipped model ``name`` (one of :data:`MODELS`), for ``from_pretrained``."""
    if name not in MODELS:
        raise ValueError(f"unknown builtin model {name!r}; the shipped ones are {', '.join(MODELS)}")
    return _ASSETS / name


def default_model_path() -> Path:
    """Directory of the default shipped model, ``tiny-arith``."""
    return model_path("tiny-arith")
