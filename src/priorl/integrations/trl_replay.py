"""Rollout replay inside TRL's ``GRPOTrainer``: the rows, their codec, and the batch arithmetic.

:class:`~priorl.integrations.trl.PriorlGRPOTrainer` (``replay=``) calls :func:`extend_generation_batch`
right after ``GRPOTrainer._generate_and_score_completions`` has generated and scored one generation batch,
before TRL shuffles it and splits it into ``steps_per_generation`` slices. This module holds what does not
need the trainer: what a stored row is (:class:`TrlRow`), how it is saved (:class:`TrlRowCodec`), the check of
TRL's batch dict against the keys priorl knows (:func:`check_batch_keys`), and the re-padding of fresh and
replayed rows into one batch (:func:`merge_rows`).

Read against TRL 1.16.0's ``grpo_trainer.py`` (the version the ``trl`` extra installs and the tests run):

- nothing recomputes rows appended to the dict ``_generate_and_score_completions`` returns;
  ``_compute_loss`` takes ``old_per_token_logps``, ``advantages``, ``ref_per_token_logps``,
  ``importance_sampling_ratio`` and ``sampling_per_token_logps`` from the dict as given, per row;
- ``split_tensor_dict`` cuts the (shuffled) batch into ``steps_per_generation`` slices of
  ``len // steps_per_generation`` rows and drops the remainder without a word: replayed rows per process are
  therefore a multiple of ``steps_per_generation``;
- ``num_items_in_batch`` (the ``dapo``/``cispo``/``vespo`` normalizer) is the loss-mask token count gathered over
  processes: it is recomputed over fresh + replayed rows.

A key of the dict that is not in :data:`KNOWN_KEYS` (images, a key a later TRL adds or renames) stops the run
with an error naming it: a row replayed without a field the loss reads would be trained on silently wrong.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = [
    "KNOWN_KEYS",
    "TRL_ROW_CODEC",
    "TrlRow",
    "TrlRowCodec",
    "check_batch_keys",
    "merge_rows",
    "replay_count",
    "rows_from_batch",
]

TOKEN_FIELDS = {
    # name: padding value (what TRL itself pads with, or a neutral value under a zero mask)
    "old_per_token_logps": 0.0,
    "ref_per_token_logps": 0.0,
    "sampling_per_token_logps": 0.0,
    "importance_sampling_ratio": 1.0,  # exp(0): the ratio TRL gives a masked position
    "tool_mask": 1,  # TRL pads tool_mask with 1
}
"""Per-completion-token fields a row carries when the batch has them, with their padding value.
``importance_sampling_ratio`` is per token in TRL's ``token_*`` modes and one value per row (shape ``(B, 1)``)
in its ``sequence_*`` modes; a row stores it in the batch's layout."""

MARKER_KEYS = ("priorl_replayed", "priorl_age")
"""Keys priorl adds to the batch: per row, whether it is replayed and its age in generations (0 for fresh rows).
TRL's loss never reads them; the split and shuffle carry them along with the row."""

KNOWN_KEYS = frozenset(
    {"prompt_ids", "prompt_mask", "completion_ids", "completion_mask", "advantages", "num_items_in_batch"}
    | set(TOKEN_FIELDS)
    | set(MARKER_KEYS)
)
"""Every key of TRL 1.16's text-only generation batch (plus priorl's markers). Anything else is refused."""


def check_batch_keys(batch: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming any key of TRL's batch dict that replay does not know how to store.

    Multimodal batches (``pixel_values``, ``image_grid_thw``, ``num_images``, ...) and keys of a TRL newer than
    the tested one land here.
    """
    unknown = sorted(k for k in batch if k not in KNOWN_KEYS)
    if unknown:
        raise ValueError(
            f"rollout replay cannot store the TRL batch key(s) {unknown}: priorl's TRL replay knows only "
            f"{sorted(KNOWN_KEYS - set(MARKER_KEYS))} (TRL 1.16, text-only). A replayed row without them would "
            "be trained on silently wrong. Multimodal inputs are not supported; for another TRL version, check "
            "GRPOTrainer._generate_and_score_completions against priorl.integrations.trl_replay."
        )
    missing = [
        k for k in ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask", "advantages") if k not in batch
    ]
    if missing:
        raise ValueError(f"TRL's generation batch lacks the key(s) {missing} that rollout replay needs")
    if batch["advantages"].dim() != 1:
        raise ValueError(
            f"rollout replay needs one advantage per row; TRL's batch has advantages of shape "
            f"{tuple(batch['advantages'].shape)}"
        )


def replay_count(replay_ratio: float, fresh: int, unit: int, available: int) -> int:
    """Replayed rows per process: ``round(replay_ratio * fresh)`` to the nearest multiple of ``unit``, capped.

    ``fresh``: fresh rows per process; ``unit``: ``steps_per_generation`` (TRL's split drops a remainder);
    ``available``: whole rows each process can take from the buffer (stored // processes). O(1).
    """
    target = unit * round(replay_ratio * fresh / unit)
    return max(0, min(target, unit * (available // unit)))


@dataclass(eq=False, slots=True)
class TrlRow:
    """One TRL rollout as the buffer stores it: unpadded token ids and per-token fields, on the CPU.

    ``prompt_ids``: the prompt without its left padding (int64). ``completion_ids`` / ``completion_mask``: the
    completion up to its last unmasked token (int64 / int8; TRL's mask after ``mask_truncated_completions``).
    ``fields``: one array per :data:`TOKEN_FIELDS` entry the batch has, as long as the completion (or of length
    1 for a sequence-level ``importance_sampling_ratio``), float fields as float32 (float64 kept). ``dtypes``: the
    torch dtype of each field and of the mask in the batch, restored exactly when the row is replayed (bfloat16
    and float16 values are held exactly by float32). ``advantage``: frozen at generation. ``step``: the generation
    (0-based, counting training generations) that produced it; ``row``: its position in that generation's batch
    gathered over processes; ``problem_id``: its dataset row.
    """

    problem_id: int
    step: int
    row: int
    advantage: float
    prompt_ids: np.ndarray
    completion_ids: np.ndarray
    completion_mask: np.ndarray
    fields: dict[str, np.ndarray]
    layouts: dict[str, str]
    dtypes: dict[str, str] = field(default_factory=dict)
    times_replayed: int = 0

    @property
    def length(self) -> int:
        return int(self.completion_ids.size)


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _torch_dtype(name: str) -> torch.dtype:
    dtype = getattr(torch, name.removeprefix("torch."), None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"replay state names an unknown torch dtype {name!r}")
    return dtype


class TrlRowCodec:
    """:class:`~priorl.replay.state.RecordCodec` for :class:`TrlRow`: CSR columns (safetensors + JSON, no pickle)."""

    name = "trl-row"

    def check(self, row: Any) -> None:
        """``ValueError`` naming the problem if ``row`` is not a well-formed :class:`TrlRow`. O(fields)."""
        if not isinstance(row, TrlRow):
            raise ValueError(f"expected a TrlRow, got {type(row).__name__}")
        if not math.isfinite(row.advantage):
            raise ValueError(f"TRL row of problem {row.problem_id} has a non-finite advantage {row.advantage}")
        if not _is_int(row.step) or row.step < 0:
            raise ValueError(f"TRL row of problem {row.problem_id} has a bad step {row.step!r}")
        n = row.length
        if n == 0 or row.completion_mask.size != n:
            raise ValueError(
                f"TRL row of problem {row.problem_id} has {n} completion ids and {row.completion_mask.size} mask values"
            )
        if "old_per_token_logps" not in row.fields:
            raise ValueError(f"TRL row of problem {row.problem_id} has no old_per_token_logps")
        for name, values in row.fields.items():
            if name not in TOKEN_FIELDS:
                raise ValueError(f"TRL row of problem {row.problem_id} has an unknown field {name!r}")
            want = 1 if row.layouts.get(name) == "row" else n
            if values.size != want:
                raise ValueError(
                    f"TRL row of problem {row.problem_id}: {name} has {values.size} values, expected {want}"
                )

    def to_columns(self, rows: list[TrlRow]) -> dict[str, Any]:
        """Flat columns of ``rows`` (all with the same fields, layouts and dtypes). O(total tokens)."""
        names = sorted(rows[0].fields) if rows else []
        layouts = {k: rows[0].layouts[k] for k in names} if rows else {}
        dtypes = dict(rows[0].dtypes) if rows else {}
        for r in rows:
            if sorted(r.fields) != names or r.layouts != layouts or r.dtypes != dtypes:
                raise ValueError(
                    f"TRL rows to save differ in their fields: {names} {layouts} {dtypes} vs {sorted(r.fields)} "
                    f"{r.layouts} {r.dtypes} (problem {r.problem_id}, step {r.step})"
                )

        from priorl.replay.state import ragged

        prompt, prompt_offsets = ragged([r.prompt_ids for r in rows], np.int64)
        completion, completion_offsets = ragged([r.completion_ids for r in rows], np.int64)
        mask, _ = ragged([r.completion_mask for r in rows], np.int8)
        fields = {}
        for name in names:
            dtype = rows[0].fields[name].dtype
            fields[name], _ = ragged([r.fields[name] for r in rows], dtype)
        return {
            "problem_id": np.array([r.problem_id for r in rows], dtype=np.int64),
            "step": np.array([r.step for r in rows], dtype=np.int64),
            "row": np.array([r.row for r in rows], dtype=np.int64),
            "advantage": np.array([r.advantage for r in rows], dtype=np.float64),
            "times_replayed": np.array([r.times_replayed for r in rows], dtype=np.int64),
            "prompt_ids": prompt,
            "prompt_offsets": prompt_offsets,
            "completion_ids": completion,
            "completion_offsets": completion_offsets,
            "completion_mask": mask,
            "fields": fields,
            "layouts": layouts,
            "dtypes": dtypes,
        }

    def from_columns(self, columns: Mapping[str, Any]) -> list[TrlRow]:
        """Rows back from :meth:`to_columns`; ``ValueError`` naming a missing or malformed column. O(n)."""
        for key in (
            "problem_id",
            "step",
            "row",
            "advantage",
            "times_replayed",
            "prompt_ids",
            "prompt_offsets",
            "completion_ids",
            "completion_offsets",
            "completion_mask",
            "fields",
            "layouts",
            "dtypes",
        ):
            if key not in columns:
                raise ValueError(f"TRL replay state is missing the column {key!r}")
        problem_id = np.asarray(columns["problem_id"], dtype=np.int64).reshape(-1)
        n = problem_id.size
        scalars = {k: np.asarray(columns[k]).reshape(-1) for k in ("step", "row", "advantage", "times_replayed")}
        for key, arr in scalars.items():
            if arr.size != n:
                raise ValueError(f"TRL replay state: {key} has {arr.size} entries for {n} rows")
        prompt = np.asarray(columns["prompt_ids"], dtype=np.int64).reshape(-1)
        completion = np.asarray(columns["completion_ids"], dtype=np.int64).reshape(-1)
        mask = np.asarray(columns["completion_mask"], dtype=np.int8).reshape(-1)
        if mask.size != completion.size:
            raise ValueError(f"TRL replay state: {mask.size} mask values for {completion.size} completion ids")
        p_off = self._offsets(columns, "prompt_offsets", n, prompt.size)
        c_off = self._offsets(columns, "completion_offsets", n, completion.size)
        layouts = {str(k): str(v) for k, v in dict(columns["layouts"]).items()}
        dtypes = {str(k): str(v) for k, v in dict(columns["dtypes"]).items()}
        for name in dtypes.values():
            _torch_dtype(name)
        flat_fields = {}
        for name, values in dict(columns["fields"]).items():
            arr = np.asarray(values).reshape(-1)
            if arr.dtype not in (np.float32, np.float64, np.int8, np.int64):
                arr = arr.astype(np.float64)
            layout = layouts.get(name)
            if layout not in ("token", "row"):
                raise ValueError(f"TRL replay state: field {name!r} has layout {layout!r}")
            want = n if layout == "row" else completion.size
            if arr.size != want:
                raise ValueError(f"TRL replay state: field {name!r} has {arr.size} values, expected {want}")
            flat_fields[name] = arr
        rows = []
        for i in range(n):
            fields = {}
            for name, arr in flat_fields.items():
                fields[name] = arr[i : i + 1] if layouts[name] == "row" else arr[c_off[i] : c_off[i + 1]]
            rows.append(
                TrlRow(
                    problem_id=int(problem_id[i]),
                    step=int(scalars["step"][i]),
                    row=int(scalars["row"][i]),
                    advantage=float(scalars["advantage"][i]),
                    prompt_ids=prompt[p_off[i] : p_off[i + 1]],
                    completion_ids=completion[c_off[i] : c_off[i + 1]],
                    completion_mask=mask[c_off[i] : c_off[i + 1]],
                    fields=fields,
                    layouts={k: layouts[k] for k in fields},
                    dtypes=dict(dtypes),
                    times_replayed=int(scalars["times_replayed"][i]),
                )
            )
        return rows

    @staticmethod
    def _offsets(columns: Mapping[str, Any], key: str, n: int, size: int) -> np.ndarray:
        offsets = np.asarray(columns[key], dtype=np.int64).reshape(-1)
        if offsets.size != n + 1 or offsets[0] != 0 or offsets[-1] != size or np.any(np.diff(offsets) < 0):
            raise ValueError(f"TRL replay state: {key} must be {n + 1} non-decreasing offsets from 0 to {size}")
        return offsets


TRL_ROW_CODEC = TrlRowCodec()


def _numpy(t: torch.Tensor) -> np.ndarray:
    t = t.detach().cpu()
    if t.is_floating_point() and t.dtype != torch.float64:
        t = t.float()  # bfloat16 / float16 are held exactly by float32
    return t.numpy().copy()


def rows_from_batch(
    batch: Mapping[str, Any], *, problem_ids: list[int], step: int, first_row: int = 0
) -> tuple[list[TrlRow], int]:
    """The batch's trainable rows as :class:`TrlRow`, and how many rows had nothing to train on.

    A row with an all-zero loss mask (``completion_mask`` times ``tool_mask``; e.g. a truncated completion under
    ``mask_truncated_completions``) carries no gradient and is not returned; zero-advantage rows are returned
    (the buffer skips and counts them). ``batch`` must hold ``old_per_token_logps``. O(tokens).
    """
    prompt_ids, prompt_mask = batch["prompt_ids"], batch["prompt_mask"]
    completion_ids, completion_mask = batch["completion_ids"], batch["completion_mask"]
    B, C = completion_ids.shape
    if len(problem_ids) != B:
        raise ValueError(f"{len(problem_ids)} problem ids for a batch of {B} rows")
    loss_mask = completion_mask if "tool_mask" not in batch else completion_mask * batch["tool_mask"]
    names = [k for k in TOKEN_FIELDS if batch.get(k) is not None]
    layouts = {k: ("row" if batch[k].dim() == 2 and batch[k].shape[1] == 1 and C != 1 else "token") for k in names}
    dtypes = {"completion_mask": str(completion_mask.dtype), "prompt_mask": str(prompt_mask.dtype)}
    dtypes.update({k: str(batch[k].dtype) for k in names})
    host = {k: _numpy(batch[k]) for k in names}
    p_ids, p_mask = _numpy(prompt_ids), _numpy(prompt_mask)
    c_ids, c_mask = _numpy(completion_ids), _numpy(completion_mask)
    has_loss = _numpy(loss_mask.sum(dim=1) > 0)
    advantages = batch["advantages"].detach().cpu().tolist()
    rows, empty = [], 0
    for i in range(B):
        if not has_loss[i]:
            empty += 1
            continue
        length = int(np.flatnonzero(c_mask[i])[-1]) + 1
        fields = {
            k: (host[k][i].reshape(-1).copy() if layouts[k] == "row" else host[k][i, :length].copy()) for k in names
        }
        rows.append(
            TrlRow(
                problem_id=int(problem_ids[i]),
                step=int(step),
                row=first_row + i,
                advantage=float(advantages[i]),
                prompt_ids=p_ids[i][p_mask[i] != 0].astype(np.int64),
                completion_ids=c_ids[i, :length].astype(np.int64),
                completion_mask=c_mask[i, :length].astype(np.int8),
                fields=fields,
                layouts=layouts,
                dtypes=dtypes,
            )
        )
    return rows, empty


def _pad_width(t: torch.Tensor, width: int, value, *, left: bool) -> torch.Tensor:
    extra = width - t.shape[1]
    if extra <= 0:
        return t
    pad = torch.full((t.shape[0], extra), value, dtype=t.dtype, device=t.device)
    return torch.cat([pad, t] if left else [t, pad], dim=1)


def merge_rows(batch: dict[str, Any], rows: list[TrlRow], *, pad_token_id: int, ages: list[int]) -> dict[str, Any]:
    """``batch`` (TRL's fresh rows) followed by ``rows`` (replayed), re-padded to common widths. O(tokens).

    Prompts are left-padded and completions right-padded, as TRL pads them; a stored row wider than the batch
    widens the whole batch (no token is cut). Left padding shifts a row's absolute positions: models with
    rotary position embeddings (Llama, Qwen, ...) score a shifted row the same up to rounding, since TRL passes no
    ``position_ids``. Each replayed row comes back in the batch's dtypes with its stored values. Adds the marker
    keys :data:`MARKER_KEYS`. ``num_items_in_batch`` is left to the caller (it needs a gather).
    """
    device = batch["completion_ids"].device
    B, C = batch["completion_ids"].shape
    P = batch["prompt_ids"].shape[1]
    names = [k for k in TOKEN_FIELDS if batch.get(k) is not None]
    layouts = {k: ("row" if batch[k].dim() == 2 and batch[k].shape[1] == 1 and C != 1 else "token") for k in names}
    for r in rows:
        if sorted(r.fields) != sorted(names) or any(r.layouts[k] != layouts[k] for k in names):
            raise ValueError(
                f"a replayed row (problem {r.problem_id}, generation {r.step}) carries the fields {r.layouts} "
                f"but this run's batches carry {layouts}: the buffer comes from a run with other settings "
                "(beta, vLLM importance sampling, tools); start it empty"
            )
    P2 = max([P] + [r.prompt_ids.size for r in rows])
    C2 = max([C] + [r.length for r in rows])
    out = dict(batch)
    out["prompt_ids"] = _pad_width(batch["prompt_ids"], P2, pad_token_id, left=True)
    out["prompt_mask"] = _pad_width(batch["prompt_mask"], P2, 0, left=True)
    out["completion_ids"] = _pad_width(batch["completion_ids"], C2, pad_token_id, left=False)
    out["completion_mask"] = _pad_width(batch["completion_mask"], C2, 0, left=False)
    for k in names:
        if batch[k].shape[1] == C:
            out[k] = _pad_width(batch[k], C2, TOKEN_FIELDS[k], left=False)
    out["priorl_replayed"] = torch.zeros(B, dtype=torch.bool, device=device)
    out["priorl_age"] = torch.zeros(B, dtype=torch.long, device=device)
    if not rows:
        return out
    k = len(rows)
    p_ids = torch.full((k, P2), pad_token_id, dtype=out["prompt_ids"].dtype)
    p_mask = torch.zeros((k, P2), dtype=out["prompt_mask"].dtype)
    c_ids = torch.full((k, C2), pad_token_id, dtype=out["completion_ids"].dtype)
    c_mask = torch.zeros((k, C2), dtype=out["completion_mask"].dtype)
    extra = {}
    for name in names:
        width = 1 if rows[0].layouts[name] == "row" else C2
        extra[name] = torch.full((k, width), TOKEN_FIELDS[name], dtype=out[name].dtype)
    for j, r in enumerate(rows):
        p, n = r.prompt_ids.size, r.length
        p_ids[j, P2 - p :] = torch.from_numpy(r.prompt_ids)
        p_mask[j, P2 - p :] = 1
        c_ids[j, :n] = torch.from_numpy(r.completion_ids)
        c_mask[j, :n] = torch.from_numpy(r.completion_mask.astype(np.int64))
        for name in names:
            values = torch.from_numpy(r.fields[name]).to(extra[name].dtype)
            extra[name][j, : values.numel()] = values
    adv = torch.tensor([r.advantage for r in rows], dtype=batch["advantages"].dtype)

    def cat(name: str, tail: torch.Tensor) -> torch.Tensor:
        return torch.cat([out[name], tail.to(device)], dim=0)

    out["prompt_ids"], out["prompt_mask"] = cat("prompt_ids", p_ids), cat("prompt_mask", p_mask)
    out["completion_ids"], out["completion_mask"] = cat("completion_ids", c_ids), cat("completion_mask", c_mask)
    out["advantages"] = cat("advantages", adv)
    for name in names:
        out[name] = cat(name, extra[name])
    out["priorl_replayed"] = cat("priorl_replayed", torch.ones(k, dtype=torch.bool))
    out["priorl_age"] = cat("priorl_age", torch.tensor(ages, dtype=torch.long))
    return out
