"""Rollouts to and from flat columns: numpy arrays that safetensors or JSON can hold, no pickle.

Ragged token fields are stored CSR-style: one flat array plus ``offsets`` of length ``n + 1``, so the
``i``-th rollout's tokens are ``flat[offsets[i]:offsets[i + 1]]``. Completion ids and behavior
log-probs share one offsets array (they have equal lengths by construction).

A buffer stores :class:`~priorl.types.Rollout` records by default. An engine adapter whose rows carry
more than a Rollout (verl's, for instance) hands the buffer its own :class:`RecordCodec`: how to check
a record and how to turn a list of them into columns and back. The buffer itself only reads a
record's ``step``, ``advantage`` and ``problem_id`` and increments its ``times_replayed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from priorl.types import Rollout, check_rollout

__all__ = [
    "COLUMN_KEYS",
    "ROLLOUT_CODEC",
    "RecordCodec",
    "RolloutCodec",
    "columns_to_rollouts",
    "ragged",
    "rollouts_to_columns",
]

COLUMN_KEYS = (
    "problem_id",
    "reward",
    "advantage",
    "step",
    "times_replayed",
    "prompt_ids",
    "prompt_offsets",
    "completion_ids",
    "completion_offsets",
    "behavior_logprobs",
)


def _flat(seq: Any, dtype: type) -> np.ndarray:
    # Torch tensors (possibly on a GPU) expose detach/cpu; lists and arrays go straight to numpy.
    if hasattr(seq, "detach"):
        seq = seq.detach().cpu().numpy()
    return np.asarray(seq, dtype=dtype).reshape(-1)


def ragged(seqs: list[Any], dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """Sequences as one flat ``dtype`` array and their ``n + 1`` int64 offsets (row i: ``flat[off[i]:off[i+1]]``)."""
    parts = [_flat(s, dtype) for s in seqs]
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([p.size for p in parts], out=offsets[1:])
    flat = np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)
    return flat, offsets


def rollouts_to_columns(rollouts: list[Rollout]) -> dict[str, np.ndarray]:
    """Flat numpy columns of ``rollouts`` (ids as int64, log-probs as float64, exact). O(total tokens)."""
    prompt_ids, prompt_offsets = ragged([r.prompt_ids for r in rollouts], np.int64)
    completion_ids, completion_offsets = ragged([r.completion_ids for r in rollouts], np.int64)
    # float64 holds float32 and Python-float log-probs exactly, so a resumed run replays the same ratios.
    logprobs, logprob_offsets = ragged([r.behavior_logprobs for r in rollouts], np.float64)
    if not np.array_equal(logprob_offsets, completion_offsets):
        raise ValueError("a stored rollout has behavior_logprobs and completion_ids of different lengths")
    return {
        "problem_id": np.array([r.problem_id for r in rollouts], dtype=np.int64),
        "reward": np.array([r.reward for r in rollouts], dtype=np.float64),
        "advantage": np.array([r.advantage for r in rollouts], dtype=np.float64),
        "step": np.array([r.step for r in rollouts], dtype=np.int64),
        "times_replayed": np.array([r.times_replayed for r in rollouts], dtype=np.int64),
        "prompt_ids": prompt_ids,
        "prompt_offsets": prompt_offsets,
        "completion_ids": completion_ids,
        "completion_offsets": completion_offsets,
        "behavior_logprobs": logprobs,
    }


def _offsets(columns: Mapping[str, Any], key: str, n: int, flat_size: int) -> np.ndarray:
    offsets = np.asarray(columns[key], dtype=np.int64).reshape(-1)
    if offsets.size != n + 1 or offsets[0] != 0 or offsets[-1] != flat_size:
        raise ValueError(f"replay state: {key} must have {n + 1} entries from 0 to {flat_size}")
    if np.any(np.diff(offsets) < 0):
        raise ValueError(f"replay state: {key} must be non-decreasing")
    return offsets


def columns_to_rollouts(columns: Mapping[str, Any]) -> list[Rollout]:
    """Rollouts from columns made by :func:`rollouts_to_columns` (or their ``tolist()``/JSON form). O(n).

    Token fields come back as 1-D numpy arrays (ids int64, log-probs float64) viewing one flat array.
    Raises ``ValueError`` naming a missing or malformed column.
    """
    for key in COLUMN_KEYS:
        if key not in columns:
            raise ValueError(f"replay state is missing the key {key!r}")
    problem_id = np.asarray(columns["problem_id"], dtype=np.int64).reshape(-1)
    n = problem_id.size
    scalars = {}
    for key, dtype in (("reward", np.float64), ("advantage", np.float64), ("step", np.int64)):
        scalars[key] = np.asarray(columns[key], dtype=dtype).reshape(-1)
    scalars["times_replayed"] = np.asarray(columns["times_replayed"], dtype=np.int64).reshape(-1)
    for key, arr in scalars.items():
        if arr.size != n:
            raise ValueError(f"replay state: {key} has {arr.size} entries for {n} rollouts")
    prompt_ids = np.asarray(columns["prompt_ids"], dtype=np.int64).reshape(-1)
    completion_ids = np.asarray(columns["completion_ids"], dtype=np.int64).reshape(-1)
    logprobs = np.asarray(columns["behavior_logprobs"], dtype=np.float64).reshape(-1)
    if logprobs.size != completion_ids.size:
        raise ValueError(f"replay state: {logprobs.size} behavior_logprobs for {completion_ids.size} completion_ids")
    p_off = _offsets(columns, "prompt_offsets", n, prompt_ids.size)
    c_off = _offsets(columns, "completion_offsets", n, completion_ids.size)
    return [
        Rollout(
            problem_id=int(problem_id[i]),
            prompt_ids=prompt_ids[p_off[i] : p_off[i + 1]],
            completion_ids=completion_ids[c_off[i] : c_off[i + 1]],
            behavior_logprobs=logprobs[c_off[i] : c_off[i + 1]],
            reward=float(scalars["reward"][i]),
            advantage=float(scalars["advantage"][i]),
            step=int(scalars["step"][i]),
            times_replayed=int(scalars["times_replayed"][i]),
        )
        for i in range(n)
    ]


class RecordCodec(Protocol):
    """How a replay buffer validates and serializes the records it stores.

    A record is any object with ``step`` (int birth step), ``advantage`` (float), ``problem_id`` and a
    writable ``times_replayed`` (int). ``name`` is written into the buffer's state so that a state saved
    with one kind of record is not loaded as another.
    """

    name: str

    def check(self, record: Any) -> None:
        """Raise ``ValueError`` naming the offending value if the record cannot be stored."""

    def to_columns(self, records: list[Any]) -> dict[str, Any]:
        """Columns (numpy arrays and JSON values, nested dicts allowed) holding ``records``."""

    def from_columns(self, columns: Mapping[str, Any]) -> list[Any]:
        """Records back from :meth:`to_columns` output; ``ValueError`` naming a missing/malformed column."""


class RolloutCodec:
    """The default codec: :class:`~priorl.types.Rollout` records, stored as :data:`COLUMN_KEYS`."""

    name = "rollout"

    def check(self, record: Any) -> None:
        check_rollout(record)

    def to_columns(self, records: list[Any]) -> dict[str, Any]:
        return rollouts_to_columns(records)

    def from_columns(self, columns: Mapping[str, Any]) -> list[Any]:
        return columns_to_rollouts(columns)


ROLLOUT_CODEC = RolloutCodec()
