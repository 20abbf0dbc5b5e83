"""Save and load component state (``state_dict()`` output) as safetensors + JSON, never pickle.

A state is a nested dict of JSON-able values and numpy arrays. :func:`save_state` writes the arrays to
``NAME.safetensors`` (keyed by their path in the dict, e.g. ``pools/status``) and everything else to
``NAME.json``, where each array is replaced by ``{"__array__": "pools/status"}``. Both files are written
to a temporary name, flushed to disk and renamed, so a crash never leaves a half-written state behind.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

_ARRAY = "__array__"


def split_state(state: dict, prefix: str = "") -> tuple[dict, dict[str, np.ndarray]]:
    """Separate arrays from the rest: returns ``(json_tree, arrays)``."""
    tree: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    for key, value in state.items():
        if "/" in str(key):
            raise ValueError(f"state key {key!r} contains '/', which is reserved for array paths")
        path = f"{prefix}{key}"
        if isinstance(value, np.ndarray):
            if value.dtype == object:
                raise ValueError(f"state array {path!r} has dtype object, which cannot be saved without pickle")
            arrays[path] = np.ascontiguousarray(value)
            tree[key] = {_ARRAY: path}
        elif isinstance(value, dict):
            tree[key], sub = split_state(value, f"{path}/")
            arrays.update(sub)
        else:
            tree[key] = value
    return tree, arrays


def join_state(tree: dict, arrays: dict[str, np.ndarray]) -> dict:
    """Inverse of :func:`split_state`."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and set(value) == {_ARRAY}:
            if value[_ARRAY] not in arrays:
                raise ValueError(f"state array {value[_ARRAY]!r} is missing from the safetensors file")
            out[key] = arrays[value[_ARRAY]]
        elif isinstance(value, dict):
            out[key] = join_state(value, arrays)
        else:
            out[key] = value
    return out


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_state(directory: str | os.PathLike, name: str, state: dict) -> None:
    """Write ``state`` as ``directory/name.safetensors`` and ``directory/name.json``."""
    from safetensors.numpy import save

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tree, arrays = split_state(state)
    write_atomic(directory / f"{name}.safetensors", save(arrays) if arrays else save({}))
    write_atomic(directory / f"{name}.json", json.dumps(tree, indent=1).encode())


def load_state(directory: str | os.PathLike, name: str) -> dict:
    """Read a state written by :func:`save_state`; a missing or malformed file raises ValueError naming it."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    directory = Path(directory)
    json_path, st_path = directory / f"{name}.json", directory / f"{name}.safetensors"
    for path in (json_path, st_path):
        if not path.is_file():
            raise ValueError(f"state file {path} does not exist")
    try:
        tree = json.loads(json_path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"state file {json_path} is not valid JSON (line {exc.lineno}): {exc.msg}") from None
    try:
        arrays = load(st_path.read_bytes())
    except SafetensorError as exc:
        raise ValueError(f"state file {st_path} is not a valid safetensors file: {exc}") from None
    return join_state(tree, arrays)
