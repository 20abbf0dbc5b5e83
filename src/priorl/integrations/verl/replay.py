"""Advantage-prioritized rollout replay inside verl's PPO step.

Per trainer step ``t``, after verl has computed the advantages (and the critic update, if any) and before
the actor update, :meth:`VerlReplay.compose` builds the actor's batch:

1. the step's fresh rows, as verl made them (restricted to the fields the actor update reads);
2. ``k`` replayed rows drawn from an :class:`~priorl.replay.AdvReplayBuffer`: distinct rows with
   P ∝ (|A| + eps)^priority_exponent, born at most ``tau_max`` trainer steps ago (older ones are evicted before the
   draw), each with its stored prompt, response, masks, advantage and *stored* ``old_log_probs``, so
   verl's PPO ratio for a replayed row is taken against the policy that generated it, not the current
   one.

``k`` is ``round(replay_ratio × fresh rows)`` rounded to a whole number of *units*, a unit being
``lcm(ppo_mini_batch_size × rollout.n, data-parallel size)`` rows, and capped by the whole units the
buffer can supply. verl splits the actor's batch evenly over data-parallel ranks and each rank's share
into equal mini-batches (verl 0.9 asserts it); whole units keep both exact, and since a step with replay
then has at least two mini-batches, verl 0.7's "one mini-batch = on-policy, ignore old_log_probs" shortcut
never applies to replayed rows. The replayed rows are spread evenly through the batch (and verl's
``balance_batch`` reorders the whole batch when enabled). After the actor update, :meth:`VerlReplay.store`
adds the step's fresh rows with a non-zero advantage.

**Widths.** verl pads prompts on the left to a fixed width and responses on the right to a fixed width
(``data.max_prompt_length`` / ``data.max_response_length``). Rows are stored unpadded. When a stored row
is wider than the current batch (the lengths changed across a resume), the whole batch is widened to fit
it; nothing is ever cut. Padded positions carry id 0, mask 0 and zero log-probs; ``position_ids`` are
recomputed as ``cumsum(attention_mask) - 1``, the formula verl uses for text models.

**What a row must be.** Checked on every fresh batch, with errors naming the row and field:
text-only rows (2-D ``position_ids`` equal to that formula, no multimodal inputs), left-padded prompts and
right-padded responses, ``input_ids`` = prompt + response, and one advantage per rollout (constant over
its response tokens, as grpo, rloo and the other outcome-level estimators give). Batch fields the actor
update reads and replay cannot reproduce (MoE routing replay, distillation teacher log-probs) are refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from priorl.registry import build_part

__all__ = ["VerlReplay", "VerlRow", "VerlRowCodec", "replay_count"]

# What verl's actor update reads (dp_actor.update_policy in verl 0.7, the engine workers' ppo_loss in 0.9).
REQUIRED = ("prompts", "responses", "response_mask", "input_ids", "attention_mask", "position_ids")
REQUIRED += ("old_log_probs", "advantages")
# Per-response-token fields the actor reads when present; stored with each row and replayed as stored.
# ref_log_prob comes from the frozen reference model, so a stored value stays exact.
OPTIONAL_TOKEN_FIELDS = ("ref_log_prob", "rollout_log_probs", "rollout_is_weights")
# Stored per response token: the loss mask, the behavior log-probs and the optional fields above.
TOKEN_FIELDS = ("response_mask", "old_log_probs")
# Batch fields verl uses for rewards, advantages, the critic or metrics, never in the actor update.
NOT_READ_BY_ACTOR = frozenset(
    {
        "token_level_scores",
        "token_level_rewards",
        "returns",
        "values",
        "rm_scores",
        "reward_baselines",
        "entropys",
        "dummy_tensor",
    }
)
REFUSED = {
    "routed_experts": "MoE routing replay (the routing of a stored row is not kept)",
    "teacher_logprobs": "on-policy distillation (teacher log-probs are not kept)",
    "teacher_ids": "on-policy distillation (teacher ids are not kept)",
    "sum_pi_squared": "the optimal-token-baseline estimator (per-token advantages)",
}
ADVANTAGE_TOLERANCE = 1e-5  # relative: outcome estimators broadcast one float32 value over the tokens


@dataclass(eq=False, slots=True)
class VerlRow:
    """One verl rollout as the replay buffer stores it: unpadded, plus its per-response-token fields.

    ``response_ids`` are the response positions verl attends to (generated tokens and, in multi-turn
    rows, tool-output tokens); ``tokens`` holds one value per such position for each field in
    ``TOKEN_FIELDS`` and the optional fields the run has (``ref_log_prob``, ...). ``advantage`` is the
    row's one advantage; ``reward`` its score (for inspection); ``step`` the trainer step it was born at.
    Ids are int32 and the loss mask int8; the float fields keep verl's dtype (bfloat16 becomes float32, which
    holds it exactly). A replayed row is rebuilt in the current batch's dtypes, with the same values.
    """

    problem_id: int
    prompt_ids: np.ndarray
    response_ids: np.ndarray
    tokens: dict[str, np.ndarray]
    reward: float
    advantage: float
    step: int
    times_replayed: int = 0


def _int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


class VerlRowCodec:
    """:class:`~priorl.replay.state.RecordCodec` for :class:`VerlRow`: CSR columns, each row's dtypes kept."""

    name = "verl-row"

    def check(self, row: Any) -> None:
        if not isinstance(row, VerlRow):
            raise ValueError(f"expected a VerlRow, got {type(row).__name__}")
        if not math.isfinite(row.advantage) or not math.isfinite(row.reward):
            raise ValueError(f"verl row of problem {row.problem_id} has a non-finite advantage or reward")
        if not _int(row.step) or row.step < 0:
            raise ValueError(f"verl row of problem {row.problem_id} has a bad step: {row.step!r}")
        missing = [name for name in TOKEN_FIELDS if name not in row.tokens]
        if missing:
            raise ValueError(f"verl row of problem {row.problem_id} lacks the token fields {missing}")
        n = len(row.response_ids)
        for name, values in row.tokens.items():
            if len(values) != n:
                raise ValueError(
                    f"verl row of problem {row.problem_id}: {name} has {len(values)} values for {n} response tokens"
                )

    def to_columns(self, rows: list[VerlRow]) -> dict[str, Any]:
        names = sorted(rows[0].tokens) if rows else []
        dtypes = {name: rows[0].tokens[name].dtype for name in names}
        for row in rows:
            if sorted(row.tokens) != names or any(row.tokens[k].dtype != dtypes[k] for k in names):
                raise ValueError(
                    f"verl rows to save have different token fields: {names} vs {sorted(row.tokens)} "
                    f"(problem {row.problem_id}, step {row.step})"
                )

        from priorl.replay.state import ragged

        prompt_ids, prompt_offsets = ragged([r.prompt_ids for r in rows], np.int32)
        response_ids, response_offsets = ragged([r.response_ids for r in rows], np.int32)
        return {
            "problem_id": np.array([r.problem_id for r in rows], dtype=np.int64),
            "reward": np.array([r.reward for r in rows], dtype=np.float64),
            "advantage": np.array([r.advantage for r in rows], dtype=np.float64),
            "step": np.array([r.step for r in rows], dtype=np.int64),
            "times_replayed": np.array([r.times_replayed for r in rows], dtype=np.int64),
            "prompt_ids": prompt_ids,
            "prompt_offsets": prompt_offsets,
            "response_ids": response_ids,
            "response_offsets": response_offsets,
            "tokens": {name: ragged([r.tokens[name] for r in rows], dtypes[name])[0] for name in names},
        }

    def from_columns(self, columns: Mapping[str, Any]) -> list[VerlRow]:
        keys = ("problem_id", "reward", "advantage", "step", "times_replayed", "prompt_ids", "prompt_offsets")
        keys += ("response_ids", "response_offsets", "tokens")
        for key in keys:
            if key not in columns:
                raise ValueError(f"replay state is missing the key {key!r}")
        scalars = {
            key: np.asarray(columns[key], dtype=dtype).reshape(-1)
            for key, dtype in (
                ("problem_id", np.int64),
                ("reward", np.float64),
                ("advantage", np.float64),
                ("step", np.int64),
                ("times_replayed", np.int64),
            )
        }
        n = scalars["problem_id"].size
        for key, values in scalars.items():
            if values.size != n:
                raise ValueError(f"replay state: {key} has {values.size} entries for {n} rows")
        prompt_ids = np.asarray(columns["prompt_ids"], dtype=np.int32).reshape(-1)
        response_ids = np.asarray(columns["response_ids"], dtype=np.int32).reshape(-1)
        p_off = self._offsets(columns, "prompt_offsets", n, prompt_ids.size)
        r_off = self._offsets(columns, "response_offsets", n, response_ids.size)
        tokens = {name: np.asarray(values).reshape(-1) for name, values in dict(columns["tokens"]).items()}
        for name, values in tokens.items():
            if values.size != response_ids.size:
                raise ValueError(f"replay state: token field {name} has {values.size} values for {response_ids.size}")
        # Copies, so a row never pins the whole loaded column in memory after it is evicted.
        return [
            VerlRow(
                problem_id=int(scalars["problem_id"][i]),
                prompt_ids=prompt_ids[p_off[i] : p_off[i + 1]].copy(),
                response_ids=response_ids[r_off[i] : r_off[i + 1]].copy(),
                tokens={name: values[r_off[i] : r_off[i + 1]].copy() for name, values in tokens.items()},
                reward=float(scalars["reward"][i]),
                advantage=float(scalars["advantage"][i]),
                step=int(scalars["step"][i]),
                times_replayed=int(scalars["times_replayed"][i]),
            )
            for i in range(n)
        ]

    @staticmethod
    def _offsets(columns: Mapping[str, Any], key: str, n: int, size: int) -> np.ndarray:
        offsets = np.asarray(columns[key], dtype=np.int64).reshape(-1)
        if offsets.size != n + 1 or offsets[0] != 0 or offsets[-1] != size or np.any(np.diff(offsets) < 0):
            raise ValueError(f"replay state: {key} must have {n + 1} non-decreasing entries from 0 to {size}")
        return offsets


def replay_count(replay_ratio: float, fresh: int, unit: int, available: int) -> int:
    """Rows to replay: ``round(replay_ratio * fresh)`` to the nearest multiple of ``unit``, capped by the
    whole units among ``available`` stored rows (Python's round: halves go to even)."""
    target = round(replay_ratio * fresh)
    return min(unit * round(target / unit), unit * (available // unit))


def _positions(attention_mask: torch.Tensor) -> torch.Tensor:
    # verl's compute_position_id_with_mask, for text models.
    return torch.clip(torch.cumsum(attention_mask, dim=-1) - 1, min=0)


def _numpy(t: torch.Tensor) -> np.ndarray:
    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16; float32 holds it exactly
        t = t.float()
    return t.numpy()


def _first_row(mask: torch.Tensor) -> int:
    return int(torch.nonzero(mask)[0, 0])


class VerlReplay:
    """An :class:`~priorl.replay.AdvReplayBuffer` of :class:`VerlRow` wired into verl's PPO step.

    Args:
        options: ``seed`` and the options of replay kind ``adv-replay`` (``replay_ratio``, ``tau_max``,
            ``priority_exponent``, ``eps``, ``warmup_steps``, ``capacity``: :data:`priorl.registry.REPLAYS`);
            ``None`` or absent: its default.
    """

    def __init__(self, **options: Any) -> None:
        kwargs = {k: v for k, v in options.items() if v is not None}
        seed = kwargs.pop("seed", 0)
        self.buffer = build_part("replay", "adv-replay", kwargs, "priorl.replay", seed=seed, codec=VerlRowCodec())
        self._last: dict[str, float] = {"target": 0.0, "unit": 0.0}

    # ------------------------------------------------------------------ the step
    def compose(self, batch, step: int, unit: int):
        """The actor's batch for trainer step ``step`` and the fresh rows to :meth:`store` after the update.

        Returns ``(actor_batch, fresh_rows)``. ``actor_batch`` is ``batch`` itself when nothing is replayed
        (verl's step unchanged), else a new ``DataProto``: the fresh rows' actor fields, widened if a
        replayed row needs it, with ``k`` replayed rows spread through it (see the module docstring).
        ``batch`` is never modified.
        """
        from verl import DataProto

        if isinstance(unit, bool) or not isinstance(unit, int) or unit < 1:
            raise ValueError(f"unit must be a positive int, got {unit!r}")
        fresh_keys = self._check_batch(batch)
        rows = self.rows_from_batch(batch, step)
        fresh = len(batch)
        target = round(self.buffer.replay_ratio * fresh) if step >= self.buffer.warmup_steps else 0
        available = self.buffer.expire(step)
        k = replay_count(self.buffer.replay_ratio, fresh, unit, available) if target else 0
        replayed = self.buffer.sample(k, step)
        self._last = {"target": float(target), "unit": float(unit)}
        if not replayed:
            return batch, rows

        optional = [name for name in OPTIONAL_TOKEN_FIELDS if name in fresh_keys]
        for row in replayed:
            missing = [name for name in optional if name not in row.tokens]
            if missing:
                raise ValueError(
                    f"a stored row (problem {row.problem_id}, step {row.step}) lacks {missing}, which this step's "
                    "batch has: the run's configuration changed since it was stored"
                )
        td = batch.batch.select(*REQUIRED, *optional)
        P, R = td["prompts"].shape[1], td["responses"].shape[1]
        P2 = max([P] + [len(r.prompt_ids) for r in replayed])
        R2 = max([R] + [len(r.response_ids) for r in replayed])
        if (P2, R2) != (P, R):
            td = self._widen(td, P2, R2)
        extra = self._rows_to_tensordict(replayed, td, P2, R2)
        combined = torch.cat([td, extra], dim=0)
        combined = combined[self._spread(fresh, len(replayed))]
        meta = dict(batch.meta_info)
        meta["global_token_num"] = torch.sum(combined["attention_mask"], dim=-1).tolist()
        return DataProto(batch=combined, non_tensor_batch={}, meta_info=meta), rows

    def store(self, rows: list[VerlRow]) -> None:
        """Store a step's fresh rows (those with advantage 0 are counted and dropped by the buffer)."""
        self.buffer.add(rows)

    def metrics(self) -> dict[str, float]:
        """The buffer's metrics plus ``target`` (round(replay_ratio × fresh rows)) and ``unit``."""
        return {**self.buffer.metrics(), **self._last}

    def state_dict(self) -> dict[str, Any]:
        """The buffer's state (numpy arrays and JSON values: save with :func:`priorl.statefile.save_state`)."""
        return self.buffer.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.buffer.load_state_dict(state)

    # ------------------------------------------------------------------ rows
    @staticmethod
    def _check_batch(batch) -> set[str]:
        keys = set(batch.batch.keys())
        for key, why in REFUSED.items():
            if key in keys:
                raise ValueError(f"priorl replay does not support {why}: the batch has {key!r}")
        missing = [key for key in REQUIRED if key not in keys]
        if missing:
            raise ValueError(f"priorl replay: the batch lacks {missing} (it has {sorted(keys)})")
        unknown = sorted(keys - set(REQUIRED) - set(OPTIONAL_TOKEN_FIELDS) - NOT_READ_BY_ACTOR)
        if unknown:
            raise ValueError(
                f"priorl replay does not know the batch fields {unknown}: it cannot tell whether verl's actor "
                "update reads them, so it cannot rebuild them for replayed rows. Disable priorl.replay for this setup"
            )
        mm = batch.non_tensor_batch.get("multi_modal_inputs")
        if mm is not None and any(bool(x) for x in mm):
            raise ValueError("priorl replay supports text-only rows; this batch has multi_modal_inputs")
        return keys

    @staticmethod
    def rows_from_batch(batch, step: int) -> list[VerlRow]:
        """The batch's rows as :class:`VerlRow`, after checking they can be replayed (errors name the row)."""
        td = batch.batch
        P = td["prompts"].shape[1]
        attention = td["attention_mask"].detach().cpu().long()
        position = td["position_ids"].detach().cpu()
        if position.dim() != 2:
            raise ValueError(
                f"priorl replay supports text models: position_ids has shape {tuple(position.shape)} (multimodal "
                "rotary positions are not rebuilt for replayed rows)"
            )
        bad = (position.long() != _positions(attention)).any(dim=1)
        if bad.any():
            raise ValueError(
                f"batch row {_first_row(bad)}: position_ids differ from cumsum(attention_mask) - 1, the positions "
                "priorl replay rebuilds for a replayed row"
            )
        prompt_mask, response_mask_attn = attention[:, :P], attention[:, P:]
        bad = (prompt_mask[:, 1:] < prompt_mask[:, :-1]).any(dim=1)
        if bad.any():
            raise ValueError(f"batch row {_first_row(bad)}: the prompt is not left-padded (attention_mask)")
        bad = (response_mask_attn[:, 1:] > response_mask_attn[:, :-1]).any(dim=1)
        if bad.any():
            raise ValueError(f"batch row {_first_row(bad)}: the response is not right-padded (attention_mask)")
        ids = td["input_ids"].detach().cpu()
        bad = (ids[:, :P] != td["prompts"].detach().cpu()).any(dim=1) | (
            ids[:, P:] != td["responses"].detach().cpu()
        ).any(dim=1)
        if bad.any():
            raise ValueError(f"batch row {_first_row(bad)}: input_ids is not prompts followed by responses")
        loss_mask = td["response_mask"].detach().cpu()
        bad = ((loss_mask != 0) & (loss_mask != 1)).any(dim=1)
        if bad.any():
            raise ValueError(f"batch row {_first_row(bad)}: response_mask holds a value other than 0 and 1")
        bad = ((loss_mask != 0) & (response_mask_attn == 0)).any(dim=1)
        if bad.any():
            raise ValueError(f"batch row {_first_row(bad)}: response_mask marks a position attention_mask pads")
        largest = max(int(td["prompts"].max()), int(td["responses"].max()), 0)
        if largest >= 2**31:
            raise ValueError(f"token id {largest} does not fit the int32 the replay buffer stores ids in")
        advantages = td["advantages"].detach().cpu().double()
        on = loss_mask != 0
        count = on.sum(dim=1)
        adv = torch.where(on, advantages, 0.0).sum(dim=1) / count.clamp(min=1)
        spread = torch.where(on, (advantages - adv[:, None]).abs(), 0.0).amax(dim=1)
        bad = spread > ADVANTAGE_TOLERANCE * adv.abs().clamp(min=1.0)
        if bad.any():
            i = _first_row(bad)
            raise ValueError(
                f"batch row {i}: its advantage varies over its response tokens (by up to {float(spread[i]):.3g}); "
                "priorl replay needs one advantage per rollout, as outcome-level estimators give "
                "(algorithm.adv_estimator=grpo, rloo, ...)"
            )

        scores = td["token_level_scores"].detach().cpu().double().sum(-1) if "token_level_scores" in td.keys() else None
        infos = batch.non_tensor_batch.get("extra_info")
        p_len = prompt_mask.sum(dim=1).tolist()
        r_len = response_mask_attn.sum(dim=1).tolist()
        prompts, responses = _numpy(td["prompts"]), _numpy(td["responses"])
        fields = [name for name in TOKEN_FIELDS + OPTIONAL_TOKEN_FIELDS if name in td.keys()]
        values = {name: _numpy(td[name]) for name in fields}
        # Stored compactly, rebuilt in the batch's dtypes: ids as int32, the 0/1 loss mask as int8.
        values["response_mask"] = values["response_mask"].astype(np.int8)
        rows = []
        for i in range(len(batch)):
            info = infos[i] if infos is not None else None
            index = info.get("index") if isinstance(info, dict) else None
            p, r = int(p_len[i]), int(r_len[i])
            rows.append(
                VerlRow(
                    problem_id=int(index) if _int(index) else -1,
                    # Copies: a view would keep this whole batch's arrays alive while the row is stored.
                    prompt_ids=prompts[i, P - p :].astype(np.int32),
                    response_ids=responses[i, :r].astype(np.int32),
                    tokens={name: values[name][i, :r].copy() for name in fields},
                    reward=float(scores[i]) if scores is not None else 0.0,
                    advantage=float(adv[i]) if count[i] > 0 else 0.0,
                    step=int(step),
                )
            )
        return rows

    @staticmethod
    def _rows_to_tensordict(rows: list[VerlRow], like, P: int, R: int):
        """Replayed rows padded to prompt width ``P`` and response width ``R``, dtypes as in ``like``."""
        from tensordict import TensorDict

        k = len(rows)
        prompts = torch.zeros(k, P, dtype=like["prompts"].dtype)
        responses = torch.zeros(k, R, dtype=like["responses"].dtype)
        attention = torch.zeros(k, P + R, dtype=like["attention_mask"].dtype)
        names = [name for name in TOKEN_FIELDS + OPTIONAL_TOKEN_FIELDS if name in like.keys()]
        fields = {name: torch.zeros(k, R, dtype=like[name].dtype) for name in names}
        for i, row in enumerate(rows):
            p, r = len(row.prompt_ids), len(row.response_ids)
            prompts[i, P - p :] = torch.from_numpy(np.asarray(row.prompt_ids))
            responses[i, :r] = torch.from_numpy(np.asarray(row.response_ids))
            attention[i, P - p : P + r] = 1
            for name in names:
                fields[name][i, :r] = torch.from_numpy(np.asarray(row.tokens[name]))
        advantage = torch.tensor([row.advantage for row in rows], dtype=torch.float64)
        out = {
            "prompts": prompts,
            "responses": responses,
            "input_ids": torch.cat([prompts, responses], dim=1),
            "attention_mask": attention,
            "position_ids": _positions(attention).to(like["position_ids"].dtype),
            "advantages": (advantage[:, None] * (fields["response_mask"] != 0)).to(like["advantages"].dtype),
            **fields,
        }
        return TensorDict({key: out[key] for key in like.keys()}, batch_size=[k])

    @staticmethod
    def _widen(td, P2: int, R2: int):
        """``td`` with prompts left-padded to ``P2`` and responses right-padded to ``R2`` columns."""
        from tensordict import TensorDict

        P, R = td["prompts"].shape[1], td["responses"].shape[1]
        B = td.batch_size[0]

        def pad(t: torch.Tensor, left: int, right: int) -> torch.Tensor:
            return torch.cat([t.new_zeros(B, left), t, t.new_zeros(B, right)], dim=1)

        out = {}
        for key in td.keys():
            t = td[key]
            if key == "prompts":
                out[key] = pad(t, P2 - P, 0)
            elif key in ("input_ids", "attention_mask"):
                out[key] = torch.cat([pad(t[:, :P], P2 - P, 0), pad(t[:, P:], 0, R2 - R)], dim=1)
            elif key != "position_ids":  # responses and the per-response-token fields
                out[key] = pad(t, 0, R2 - R)
        out["position_ids"] = _positions(out["attention_mask"]).to(td["position_ids"].dtype)
        return TensorDict(out, batch_size=[B])

    @staticmethod
    def _spread(fresh: int, replayed: int) -> torch.Tensor:
        """Row order placing the ``replayed`` rows (indices fresh..) evenly among the fresh ones."""
        n = fresh + replayed
        slots = {(2 * j + 1) * n // (2 * replayed) for j in range(replayed)}
        order, next_fresh, next_replayed = [], 0, fresh
        for position in range(n):
            if position in slots:
                order.append(next_replayed)
                next_replayed += 1
            else:
                order.append(next_fresh)
                next_fresh += 1
        return torch.tensor(order)
