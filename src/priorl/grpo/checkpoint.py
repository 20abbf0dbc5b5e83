"""Checkpoints: model, optimizer, scheduler, sampler, replay buffer, RNG states and step, written atomically.

Layout: ``RUN/checkpoints/step_000050/`` holding ``model/`` (Hugging Face ``save_pretrained``,
safetensors), ``optimizer.safetensors`` + ``optimizer.json``, ``sampler.*``, ``replay.*`` (see
:mod:`priorl.statefile`), ``rng.safetensors`` + ``rng.json`` and ``trainer_state.json`` (step, counters,
the run's id, whether the step's held-out evaluation is still due, time spent). Everything is written
into a temporary directory first, flushed, and renamed into place, so a half-written checkpoint never
carries a ``step_*`` name. No pickle: tensors go to safetensors, the rest to JSON.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from priorl.faults import maybe_fault
from priorl.statefile import load_state, save_state, write_atomic

PREFIX = "step_"


class CheckpointError(RuntimeError):
    """A checkpoint could not be written; the message names it and the last complete one."""


def remove_partial_checkpoints(run_dir: Path) -> int:
    """Delete temporary directories left by a checkpoint write that was killed. Returns how many."""
    root = Path(run_dir) / "checkpoints"
    stale = [p for p in root.glob(".tmp-*") if p.is_dir()] if root.is_dir() else []
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return len(stale)


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"{PREFIX}{step:06d}"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first (temporary directories are ignored)."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    done = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and (p / "COMPLETE").exists()]
    return sorted(done, key=lambda p: int(p.name[len(PREFIX) :]))


def _save_optimizer(directory: Path, optimizer: torch.optim.Optimizer) -> None:
    from safetensors.torch import save_file

    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict] = {}
    for idx, entries in state["state"].items():
        for name, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"{idx}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[name] = value
    save_file(tensors, str(directory / "optimizer.safetensors"))
    meta = {"param_groups": state["param_groups"], "scalars": scalars}
    write_atomic(directory / "optimizer.json", json.dumps(meta).encode())


def _load_optimizer(directory: Path, optimizer: torch.optim.Optimizer) -> None:
    from safetensors.torch import load_file

    tensors = load_file(str(directory / "optimizer.safetensors"))
    meta = json.loads((directory / "optimizer.json").read_text())
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    for idx, entries in meta["scalars"].items():
        state.setdefault(int(idx), {}).update(entries)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators (a run starts from ``seed``)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng() -> tuple[dict[str, np.ndarray], dict]:
    """The torch (CPU and CUDA) and Python RNG states, as saved in a checkpoint."""
    arrays = {"torch_cpu": torch.get_rng_state().numpy()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            arrays[f"torch_cuda_{i}"] = s.numpy()
    py = random.getstate()
    return arrays, {"python": [py[0], list(py[1]), py[2]]}


def restore_rng(arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Set the RNG states captured by :func:`capture_rng`."""
    torch.set_rng_state(torch.from_numpy(np.asarray(arrays["torch_cpu"], dtype=np.uint8)))
    if torch.cuda.is_available():
        states = [torch.from_numpy(np.asarray(arrays[k], dtype=np.uint8)) for k in sorted(arrays) if "cuda" in k]
        if states:
            torch.cuda.set_rng_state_all(states)
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))


def save_checkpoint(
    run_dir: Path,
    step: int,
    *,
    model,
    tokenizer,
    optimizer,
    scheduler,
    sampler,
    replay,
    trainer_state: dict,
    keep_last: int,
) -> Path:
    """Write a complete checkpoint atomically and prune old ones. Returns its directory."""
    final = checkpoint_dir(run_dir, step)
    tmp = final.with_name(f".tmp-{final.name}-{os.getpid()}")
    try:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        model.save_pretrained(tmp / "model", safe_serialization=True)
        tokenizer.save_pretrained(tmp / "model")
        _save_optimizer(tmp, optimizer)
        write_atomic(tmp / "scheduler.json", json.dumps(scheduler.state_dict()).encode())
        save_state(tmp, "sampler", sampler.state_dict())
        if replay is not None:
            save_state(tmp, "replay", replay.state_dict())
        arrays, meta = capture_rng()
        save_state(tmp, "rng", {"arrays": arrays, "meta": meta})
        maybe_fault("checkpoint", step)  # half-written: the model is there, the rest is not
        write_atomic(tmp / "trainer_state.json", json.dumps(trainer_state, indent=1).encode())
        write_atomic(tmp / "COMPLETE", b"ok\n")
        for path in tmp.rglob("*"):  # flush model files written by save_pretrained too
            if path.is_file():
                with open(path, "rb") as f:
                    os.fsync(f.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        dir_fd = os.open(final.parent, os.O_RDONLY)  # make the rename itself durable
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        # A full disk or a vanished directory: drop the partial write, keep every complete checkpoint.
        shutil.rmtree(tmp, ignore_errors=True)
        previous = list_checkpoints(run_dir)
        kept = f"the last complete checkpoint, {previous[-1]}, is intact" if previous else "no earlier checkpoint"
        raise CheckpointError(f"could not write checkpoint {final}: {exc.strerror or exc}; {kept}") from None
    for old in list_checkpoints(run_dir)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def read_trainer_state(path: Path) -> dict:
    """A checkpoint's ``trainer_state.json`` (step, counters, run id), without loading anything else."""
    file = Path(path) / "trainer_state.json"
    try:
        return json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"checkpoint {path}: cannot read trainer_state.json ({exc})") from None


def load_checkpoint(path: Path, *, model, optimizer, scheduler, sampler, replay) -> dict:
    """Restore everything saved by :func:`save_checkpoint` into the given objects; returns the trainer state."""
    from safetensors.torch import load_file

    path = Path(path)
    if not (path / "COMPLETE").exists():
        raise ValueError(f"checkpoint {path} is incomplete (no COMPLETE marker)")
    model_dir = path / "model"
    weights = model_dir / "model.safetensors"
    if weights.exists():
        state = load_file(str(weights))
        missing, unexpected = model.load_state_dict(state, strict=False)
        real_missing = [k for k in missing if "lm_head" not in k]  # tied embeddings are saved once
        if real_missing or unexpected:
            raise ValueError(
                f"checkpoint {path}: weights do not match the model ({real_missing[:3]}, {unexpected[:3]})"
            )
    else:  # peft adapters
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, load_file(str(model_dir / "adapter_model.safetensors")))
    _load_optimizer(path, optimizer)
    scheduler.load_state_dict(json.loads((path / "scheduler.json").read_text()))
    sampler.load_state_dict(load_state(path, "sampler"))
    if replay is not None:
        replay.load_state_dict(load_state(path, "replay"))
    rng = load_state(path, "rng")
    restore_rng(rng["arrays"], rng["meta"])
    return json.loads((path / "trainer_state.json").read_text())
