"""Mixed precision: float32 master weights and optimizer state, bfloat16 compute where it is safe.

``model.precision`` picks one of two settings:

- ``fp32`` (the default): everything in the weights' dtype (``model.dtype``, float32 unless set).
- ``bf16-mixed``: the weights, the gradients and AdamW's moments stay float32 (an update of 1e-6 relative to a
  weight is far below bfloat16's resolution of 2^-8, so it must land on a float32 copy); the matrix products
  of ``generate()``, of each training micro-batch's forward (and so its backward) and of evaluation run in
  bfloat16 under ``torch.autocast``. What rounding would bias stays float32: the output head (``lm_head``: its
  logits feed both the sampled token's recorded log-prob and the trainer's recomputed one, and a bf16 logit
  is off by up to 2^-8 of its size), the log-softmax, the loss, the advantages and every statistic.

Each ``generate()`` call and each micro-batch opens its own autocast context (:meth:`Precision.autocast`),
never one held across ``optimizer.step()``: autocast caches bf16 copies of the weights until its context
exits, and a cache held across an update would compute with the old weights.

A device without fast bfloat16 (a CPU without AVX512-BF16 or AMX, a GPU before Ampere) gains nothing and loses
precision: there :func:`resolve_precision` falls back to ``fp32`` and says so once; every run records the
precision it resolved to (``summary.json``, ``machine``).
"""

from __future__ import annotations

import contextlib
import types
from dataclasses import dataclass

import torch

PRECISIONS = ("fp32", "bf16-mixed")


def fast_bf16(device: torch.device) -> tuple[bool, str]:
    """Whether ``device`` computes bfloat16 matrix products faster than float32, and the evidence in words."""
    if device.type == "cuda":
        ok = torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
        name = torch.cuda.get_device_name(device) if torch.cuda.is_available() else "no CUDA device"
        return ok, f"{name}: {'native' if ok else 'no native'} bfloat16"
    if device.type == "cpu":
        flags = cpu_bf16_flags()
        ok = bool(flags)
        return ok, f"CPU with {', '.join(flags)}" if ok else "CPU without AVX512-BF16 or AMX-BF16"
    return False, f"{device.type}: bfloat16 autocast not used here"


def cpu_bf16_flags() -> list[str]:
    """The CPU's bfloat16 matrix features PyTorch can use: ``avx512_bf16``, ``amx_bf16`` (empty when none)."""
    import torch.cpu

    flags = []
    if getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)():
        flags.append("avx512_bf16")
    if getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)():
        flags.append("amx_bf16")
    return flags


@dataclass(frozen=True)
class Precision:
    """How a run computes: ``name`` is ``fp32`` or ``bf16-mixed`` (resolved for ``device_type``)."""

    name: str = "fp32"
    device_type: str = "cpu"

    @property
    def mixed(self) -> bool:
        return self.name == "bf16-mixed"

    def autocast(self):
        """A fresh context for one ``generate()`` call or one micro-batch's forward (a no-op under ``fp32``)."""
        if not self.mixed:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=torch.bfloat16)


def resolve_precision(requested: str, device: torch.device) -> tuple[Precision, str | None]:
    """The precision a run uses on ``device``, and a warning when ``bf16-mixed`` falls back to ``fp32``."""
    if requested not in PRECISIONS:
        raise ValueError(f"model.precision {requested!r}: expected one of {', '.join(PRECISIONS)}")
    if requested == "fp32":
        return Precision("fp32", device.type), None
    ok, why = fast_bf16(device)
    if not ok:
        return Precision("fp32", device.type), (
            f"model.precision is bf16-mixed, but this device has no fast bfloat16 ({why}): the run uses fp32"
        )
    return Precision("bf16-mixed", device.type), None


def keep_head_float32(model) -> bool:
    """Make the output head (``lm_head``) of ``model`` compute in float32 even under autocast; returns whether
    it found one. The head's weights are not copied (tied embeddings stay tied; ``state_dict`` is unchanged):
    only this module's ``forward`` is wrapped, on the instance."""
    hf = model.get_base_model() if hasattr(model, "get_base_model") else model
    head = hf.get_output_embeddings() if hasattr(hf, "get_output_embeddings") else None
    if head is None or getattr(head, "_priorl_float32", False):
        return head is not None
    inner = head.forward

    def forward(self, hidden, *args, **kwargs):
        with torch.autocast(hidden.device.type, enabled=False):
            return inner(hidden.float(), *args, **kwargs)

    head.forward = types.MethodType(forward, head)
    head._priorl_float32 = True
    return True


def machine_record(precision: Precision | None = None) -> dict:
    """Where a run ran: CPU model and its bf16 features, cores, torch threads, GPU, library versions, and the
    resolved precision. Recorded in every run's summary.json and in a study's study.json."""
    import os
    import platform

    import transformers

    record = {
        "cpu": _cpu_model(),
        "cpu_bf16": cpu_bf16_flags(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    if precision is not None:
        record["precision"] = precision.name
    return record


def _cpu_model() -> str:
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
