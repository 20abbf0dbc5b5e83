"""priorl inside TRL: :class:`PriorlGRPOTrainer`, TRL's ``GRPOTrainer`` with priorl's problem sampler, its rollout
replay, or both (extra ``priorl[trl]``; the name follows the verl adapter's ``PriorlRayPPOTrainer``).

A ``trl.GRPOTrainer`` whose prompts come from a priorl sampler and whose rewards feed it back::

    from priorl.integrations.trl import PriorlGRPOTrainer
    from priorl.sampling import PrioritizedSampler

    trainer = PriorlGRPOTrainer(
        model="Qwen/Qwen3-0.6B-Base",
        reward_funcs=accuracy_reward,            # rewards in [0, 1], or pass reward_transform=
        args=GRPOConfig(output_dir="out", num_generations=8, max_steps=500),
        train_dataset=dataset,                   # a datasets.Dataset with a "prompt" column
        sampler=PrioritizedSampler(len(dataset), seed=0),
    )
    trainer.train()                              # accelerate launch ... works the same

How it plugs in:

- **Prompts.** ``_get_train_sampler`` returns :class:`PriorlRepeatSampler`, which keeps TRL's index
  pattern (each index ``num_generations`` times in a row, each chunk ``num_iterations *
  steps_per_generation`` times) but draws every chunk lazily from the priorl sampler when the loader
  reaches it. Every process builds the same sampler with the same seed and observes the same gathered
  rewards, so all processes yield the same stream and each takes its own slice, as with TRL's own sampler.
- **Rewards.** ``_calculate_rewards`` returns the rewards gathered across processes; the override combines
  them with ``reward_weights`` (as TRL does before computing advantages), gathers the row indices the same
  way, checks that each group of ``num_generations`` rows is one problem, and calls ``observe``.
- **Checkpoints.** The sampler's state (safetensors + JSON, with the chunks drawn but not yet scored) is
  written into every ``checkpoint-N`` folder as ``priorl_sampler.*`` and restored by
  ``train(resume_from_checkpoint=...)``. Because the restored sampler continues exactly where it stopped,
  the trainer must not fast-forward the loader on resume: ``ignore_data_skip`` is set to True.

**Staleness (documented, by design).** The accelerate DataLoader fetches one batch ahead, so the chunk for
generation ``k+1`` is drawn when generation ``k`` starts, before ``k``'s rewards are observed: chunks are
chosen from priorities one generation old. With ``dataloader_num_workers > 0`` the lag grows by the
prefetched batches (``num_workers * prefetch_factor``); keep it at 0 (the default). Problems in the
unscored chunk are held out of the heap until their rewards arrive, so the lag never picks a problem twice.

**Rollout replay** (``replay=AdvReplayBuffer(...)``; with or without ``sampler=``). After TRL has generated
and scored a training generation batch, the adapter (1) computes ``old_per_token_logps`` once without grad where
TRL left them unset (one update per generation), (2) gathers the batch's rows over processes and, after the
buffer's warm-up, draws ``replay_count`` rows per process from the buffer (rows older than ``tau_max``
generations evicted first, P ∝ (|A| + eps)^priority_exponent), (3) stores the gathered fresh rows with a non-zero
advantage, (4) appends each process's replayed rows, with their stored prompt and completion ids, completion mask,
advantage, old log-probs and, where the run has them, reference log-probs, vLLM importance-sampling ratio and
sampling log-probs, and recomputes ``num_items_in_batch``. TRL then shuffles and splits the whole batch as usual,
so every micro-batch holds ``1 + replay_ratio`` times the rows. The buffer is replicated: every process stores
the same gathered rows in the same order and draws with the same RNG, takes its own slice of one global draw,
and gets the same number of rows. Eval batches are untouched. See :mod:`priorl.integrations.trl_replay` for what
was checked against TRL 1.16 and docs/scale.md for the costs and what was and was not run.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import Sampler

from priorl.integrations.feed import ChunkFeed
from priorl.integrations.trl_replay import (
    TOKEN_FIELDS,
    TRL_ROW_CODEC,
    check_batch_keys,
    merge_rows,
    replay_count,
    rows_from_batch,
)
from priorl.replay.buffer import ReplayBuffer
from priorl.replay.state import ROLLOUT_CODEC
from priorl.statefile import load_state, save_state

try:
    from trl import GRPOTrainer
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("priorl.integrations.trl needs TRL: pip install 'priorl[trl]' (or pip install trl)") from exc

logger = logging.getLogger(__name__)

INDEX_COLUMN = "priorl_index"
"""Column added to the training dataset: each row's position, the problem id the sampler uses."""

STATE_NAME = "priorl_sampler"
REPLAY_STATE_NAME = "priorl_replay"
TESTED_TRL = "1.16"
"""The TRL minor version replay was written and tested against (its private ``_generate_and_score_completions``)."""


class PriorlRepeatSampler(Sampler[int]):
    """TRL's ``RepeatSampler`` index pattern, with chunks drawn lazily from a :class:`ChunkFeed`.

    One pass ("epoch") is ``num_problems // chunk_size`` chunks, as with TRL's sampler; each chunk's
    indices are each repeated ``mini_repeat_count`` times, and the chunk ``repeat_count`` times.
    """

    def __init__(self, feed: ChunkFeed, num_problems: int, mini_repeat_count: int, repeat_count: int) -> None:
        self.feed = feed
        self.num_problems = num_problems
        self.mini_repeat_count = mini_repeat_count
        self.repeat_count = repeat_count

    def __iter__(self) -> Iterator[int]:
        for _ in range(self.num_problems // self.feed.chunk_size):
            chunk = self.feed.next_chunk()  # drawn only now, from the priorities known now
            for _ in range(self.repeat_count):
                for index in chunk:
                    for _ in range(self.mini_repeat_count):
                        yield index

    def __len__(self) -> int:
        chunks = self.num_problems // self.feed.chunk_size
        return chunks * self.feed.chunk_size * self.mini_repeat_count * self.repeat_count


def _check_unit_interval(reward: float) -> float:
    if not 0.0 <= reward <= 1.0:
        raise ValueError(
            f"reward {reward!r} is outside [0, 1]: priorl's sampler estimates a success rate. Pass "
            "reward_transform= (e.g. lambda r: float(r > 0)) to PriorlGRPOTrainer to map rewards to [0, 1]."
        )
    return reward


class PriorlGRPOTrainer(GRPOTrainer):
    """A ``trl.GRPOTrainer`` with priorl's problem sampler, its rollout replay, or both.

    Args:
        sampler: a priorl sampler over the training set's rows (``PrioritizedSampler(len(train_dataset))``
            or ``UniformSampler``), or ``None`` for TRL's own sampler. Every process must build it identically
            (same seed).
        replay: a :class:`~priorl.replay.AdvReplayBuffer` (or another empty
            :class:`~priorl.replay.ReplayBuffer`, e.g. ``NaiveReplayBuffer``), or ``None``. Its ``tau_max`` and
            ``warmup_steps`` count training generations (one generation feeds ``steps_per_generation *
            num_iterations`` micro-steps); ``replay_ratio`` is replayed rows per fresh row, per process, rounded to a
            multiple of ``steps_per_generation``. Every process must build it identically (same seed). The adapter
            sets its record codec to TRL rows.
        reward_transform: maps the combined reward of one completion (the ``reward_weights``-weighted sum
            of ``reward_funcs``, as TRL computes it) to [0, 1] for the sampler; by default the reward
            must already be in [0, 1] and anything else raises a ValueError naming the value.
        model, reward_funcs, args, train_dataset, **kwargs: everything ``trl.GRPOTrainer`` takes;
            ``train_dataset`` must be a ``datasets.Dataset`` (an iterable dataset cannot be indexed).

    Attributes:
        priorl_sampler: the sampler (or None). ``priorl_feed``: its :class:`ChunkFeed`. ``priorl_replay``: the
        buffer (or None). ``priorl_generation``: training generations done. ``priorl_last_draw``: this process's
        replayed rows of the last generation (read-only).
    """

    def __init__(
        self,
        model,
        reward_funcs=None,
        args=None,
        train_dataset=None,
        *more,
        sampler=None,
        replay: ReplayBuffer | None = None,
        reward_transform: Callable[[float], float] | None = None,
        **kwargs,
    ) -> None:
        if sampler is None and replay is None:
            raise ValueError("PriorlGRPOTrainer needs sampler=, replay= or both (else use trl.GRPOTrainer)")
        train_dataset = _with_index_column(train_dataset)
        if sampler is not None:
            num_problems = getattr(sampler, "num_problems", None)
            if num_problems != len(train_dataset):
                raise ValueError(
                    f"the sampler covers {num_problems} problems but train_dataset has {len(train_dataset)} rows; "
                    "build it as PrioritizedSampler(len(train_dataset), seed=...)"
                )
        if replay is not None:
            _check_buffer(replay)
        self.priorl_sampler = sampler
        self.priorl_replay = replay
        self.priorl_generation = 0
        self.priorl_last_draw: list = []
        self._priorl_skipped_empty = 0
        self._priorl_rng_checkpoint: str | None = None
        self.priorl_transform = reward_transform or _check_unit_interval
        super().__init__(model, reward_funcs, args, train_dataset, *more, **kwargs)
        if replay is not None:
            self._check_replay_settings()
        self.priorl_feed = None
        if sampler is None:
            return
        chunk = self.args.generation_batch_size // self.num_generations
        if chunk > num_problems:
            raise ValueError(
                f"one generation needs {chunk} distinct prompts (generation_batch_size "
                f"{self.args.generation_batch_size} / num_generations {self.num_generations}) but train_dataset "
                f"has only {num_problems} rows"
            )
        self.priorl_feed = ChunkFeed(sampler, chunk)
        if not self.args.ignore_data_skip:
            logger.info(
                "PriorlGRPOTrainer sets ignore_data_skip=True: the sampler's saved state resumes the prompt "
                "stream exactly, so the loader must not be fast-forwarded."
            )
            self.args.ignore_data_skip = True

    def _check_replay_settings(self) -> None:
        """Refuse TRL settings replay cannot honour, each named (called once TRL has built its own state)."""
        import trl

        if not trl.__version__.startswith(TESTED_TRL + "."):
            logger.warning(
                "priorl's TRL replay was tested with TRL %s.x only; this is TRL %s. It checks every batch key and "
                "stops on an unknown one, but TRL's private _generate_and_score_completions may have changed.",
                TESTED_TRL,
                trl.__version__,
            )
        if self.beta != 0.0 and getattr(self.args, "sync_ref_model", False):
            raise ValueError(
                "replay with beta != 0 and sync_ref_model=True is refused: a replayed row carries the reference "
                "log-probs of its generation, and a synced reference model would make them stale. Set "
                "sync_ref_model=False (a frozen reference keeps them exact) or beta=0."
            )
        spg = self.args.steps_per_generation
        fresh = self.args.per_device_train_batch_size * spg
        if replay_count(self.priorl_replay.replay_ratio, fresh, spg, available=fresh * 10**6) == 0 and (
            self.priorl_replay.replay_ratio > 0
        ):
            raise ValueError(
                f"replay_ratio {self.priorl_replay.replay_ratio} rounds to no replayed row: each process has {fresh} "
                f"fresh rows per generation and replays a multiple of steps_per_generation ({spg}) rows; raise "
                "replay_ratio or per_device_train_batch_size"
            )

    # ------------------------------------------------------------------ replay
    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        if self.priorl_replay is None or not self.model.training:
            return output  # eval batches are never replayed into nor stored
        return self._priorl_extend(output, inputs)

    def _priorl_extend(self, output: dict[str, Any], inputs) -> dict[str, Any]:
        """Store this generation's rows and append the replayed ones (see the module docstring)."""
        from accelerate.utils import gather

        check_batch_keys(output)
        acc = self.accelerator
        device = output["completion_ids"].device
        if output.get("old_per_token_logps") is None:
            output["old_per_token_logps"] = self._priorl_old_logps(output)
        ids = [int(x[INDEX_COLUMN]) for x in inputs] if inputs and INDEX_COLUMN in inputs[0] else None
        if ids is None or len(ids) != output["completion_ids"].shape[0]:
            raise RuntimeError(
                f"TRL's generation batch has {output['completion_ids'].shape[0]} rows but its inputs "
                f"{'lack the ' + INDEX_COLUMN + ' column' if ids is None else f'have {len(ids)} rows'}"
            )
        step = self.priorl_generation
        B = output["completion_ids"].shape[0]
        fresh_all, empty = self._priorl_gather_rows(output, ids, step)

        buffer, spg, world = self.priorl_replay, self.args.steps_per_generation, acc.num_processes
        available = buffer.expire(step)
        k = 0
        if step >= buffer.warmup_steps:
            k = replay_count(buffer.replay_ratio, B, spg, available // world)
        drawn = buffer.sample(k * world, step)  # the same draw on every process: same rows, same RNG
        mine = drawn[acc.process_index * k : (acc.process_index + 1) * k]
        buffer.add(fresh_all)
        self.priorl_generation = step + 1
        self.priorl_last_draw = mine

        out = merge_rows(output, mine, pad_token_id=self._tokenizer.pad_token_id, ages=[step - r.step for r in mine])
        loss_mask = out["completion_mask"] if "tool_mask" not in out else out["completion_mask"] * out["tool_mask"]
        out["num_items_in_batch"] = gather(loss_mask.sum().reshape(1)).sum().to(device)

        metrics = buffer.metrics()
        log = self._metrics["train"]
        log["priorl/replay/replayed"].append(float(len(drawn)))
        log["priorl/replay/replayed_per_process"].append(float(k))
        log["priorl/replay/replayed_mean_age"].append(metrics["replayed_mean_age"])
        log["priorl/replay/replayed_mean_abs_advantage"].append(metrics["replayed_mean_abs_advantage"])
        log["priorl/replay/size"].append(metrics["size"])
        for key in ("added", "skipped_zero_advantage", "evicted_age", "evicted_capacity"):
            log[f"priorl/replay/{key}"].append(metrics[key])
        self._priorl_skipped_empty += empty
        log["priorl/replay/skipped_empty_mask"].append(float(self._priorl_skipped_empty))
        return out

    def _priorl_old_logps(self, output: dict[str, Any]):
        """The current policy's per-token log-probs of the batch, once, without grad (TRL's own computation)."""
        from trl.models.utils import disable_gradient_checkpointing

        prompt_completion_ids = torch.cat([output["prompt_ids"], output["completion_ids"]], dim=1)
        attention_mask = torch.cat([output["prompt_mask"], output["completion_mask"]], dim=1)
        with torch.no_grad(), disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs):
            logps, _, _ = self._get_per_token_logps_and_entropies(
                self.model,
                prompt_completion_ids,
                attention_mask,
                output["completion_ids"].size(1),
                batch_size=self.args.per_device_train_batch_size,
            )
        return logps

    def _priorl_gather_rows(self, output: dict[str, Any], ids: list[int], step: int):
        """Every process's rows of this generation, in process order (the replicated buffer's input).

        Tensors are padded to common widths across processes (prompts on the left, completions on the right) and
        gathered; each process then builds the same rows. Returns ``(rows, rows without a loss token)``.
        """
        acc = self.accelerator
        if acc.num_processes == 1:
            return rows_from_batch(output, problem_ids=ids, step=step)
        from accelerate.utils import gather

        pad_id = self._tokenizer.pad_token_id
        gathered: dict[str, Any] = {}
        for key in ("prompt_ids", "prompt_mask"):
            value = pad_id if key == "prompt_ids" else 0
            gathered[key] = gather(acc.pad_across_processes(output[key], dim=1, pad_index=value, pad_first=True))
        per_token = ["completion_ids", "completion_mask"] + [k for k in TOKEN_FIELDS if output.get(k) is not None]
        for key in per_token:
            t = output[key]
            if key in TOKEN_FIELDS and t.shape[1] == 1 and output["completion_ids"].shape[1] != 1:
                gathered[key] = gather(t)  # a sequence-level importance-sampling ratio
                continue
            value = pad_id if key == "completion_ids" else TOKEN_FIELDS.get(key, 0)
            gathered[key] = gather(acc.pad_across_processes(t, dim=1, pad_index=value))
        gathered["advantages"] = gather(output["advantages"])
        all_ids = gather(torch.tensor(ids, dtype=torch.long, device=output["advantages"].device)).tolist()
        return rows_from_batch(gathered, problem_ids=all_ids, step=step)

    # ------------------------------------------------------------------ prompts
    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        if INDEX_COLUMN not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, INDEX_COLUMN]

    def _get_train_sampler(self, dataset=None) -> Sampler:
        if self.priorl_sampler is None:
            return super()._get_train_sampler(dataset)
        dataset = self.train_dataset if dataset is None else dataset
        return PriorlRepeatSampler(
            self.priorl_feed,
            num_problems=len(dataset),
            mini_repeat_count=self.num_generations,
            repeat_count=self.num_iterations * self.args.steps_per_generation,
        )

    # ------------------------------------------------------------------ rewards
    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        if self.model.training and self.priorl_sampler is not None:
            self._observe(inputs, rewards_per_func)
        return rewards_per_func

    def _observe(self, inputs, rewards_per_func: torch.Tensor) -> None:
        from accelerate.utils import gather

        device = rewards_per_func.device
        local_ids = torch.tensor([int(x[INDEX_COLUMN]) for x in inputs], dtype=torch.long, device=device)
        ids = gather(local_ids).tolist()
        weights = self.reward_weights.to(device).unsqueeze(0)
        rewards = (rewards_per_func * weights).nansum(dim=1)
        rewards[torch.isnan(rewards_per_func).all(dim=1)] = torch.nan  # unscorable: every reward func gave None
        rewards = rewards.tolist()
        G = self.num_generations
        if len(ids) != len(rewards) or len(ids) % G:
            raise RuntimeError(f"got {len(ids)} row indices and {len(rewards)} rewards for groups of {G}")
        group_ids: list[int] = []
        groups: list[list[float]] = []
        for start in range(0, len(ids), G):
            members = set(ids[start : start + G])
            if len(members) != 1:
                raise RuntimeError(
                    f"rows {start}..{start + G - 1} of the gathered batch come from problems {sorted(members)}; "
                    "expected one problem per group of num_generations rows (TRL's grouping changed?)"
                )
            scored = [r for r in rewards[start : start + G] if not math.isnan(r)]
            if not scored:
                continue
            group_ids.append(ids[start])
            groups.append([float(self.priorl_transform(r)) for r in scored])
        if group_ids:
            self.priorl_feed.observe(group_ids, groups)
        for key, value in self.priorl_sampler.metrics().items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self._metrics["train"][f"priorl/{key}"].append(float(value))

    # ------------------------------------------------------------------ checkpoints
    def get_batch_samples(self, epoch_iterator, num_batches, device):
        """transformers' batch fetch; on the first fetch after a mid-epoch resume, then the checkpoint's RNG state.

        With ``ignore_data_skip=True`` transformers (5.x) restores the RNG state before it creates the data
        iterator, whose first fetch draws the loader's base seed from the torch RNG: right for a checkpoint at an
        epoch boundary (the uninterrupted run also starts a new iterator there), one draw off mid-epoch, where the
        uninterrupted run draws nothing between the save and the next generation. Mid-epoch the state is restored
        again here, after the fetch and before the first forward (where transformers restores it when it skips
        batches itself), so a resumed run samples the same completions as an uninterrupted one.
        """
        out = super().get_batch_samples(epoch_iterator, num_batches, device)
        checkpoint, self._priorl_rng_checkpoint = self._priorl_rng_checkpoint, None
        epoch = float(self.state.epoch or 0.0)
        if checkpoint is not None and abs(epoch - round(epoch)) > 1e-9:
            self._load_rng_state(checkpoint)
        return out

    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

            folder = os.path.join(
                self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            )
            if self.priorl_feed is not None:
                save_state(folder, STATE_NAME, self.priorl_feed.state_dict())
            if self.priorl_replay is not None:
                # The buffer is replicated (identical on every process), so the main process's copy is all of it.
                state = {
                    "generation": self.priorl_generation,
                    "skipped_empty_mask": self._priorl_skipped_empty,
                    "buffer": self.priorl_replay.state_dict(),
                }
                save_state(folder, REPLAY_STATE_NAME, state)

    def _load_optimizer_and_scheduler(self, checkpoint):
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is None:
            return
        # The RNG state is restored once more after the first batch fetch (get_batch_samples says why).
        self._priorl_rng_checkpoint = checkpoint if self.args.ignore_data_skip else None
        for name, wanted in ((STATE_NAME, self.priorl_feed), (REPLAY_STATE_NAME, self.priorl_replay)):
            if wanted is not None and not os.path.exists(os.path.join(checkpoint, f"{name}.json")):
                what = "sampler" if name == STATE_NAME else "replay buffer"
                raise FileNotFoundError(
                    f"{checkpoint} has no {name}.json: it was not written by a PriorlGRPOTrainer with this "
                    f"{what}, so the {what} cannot be restored (an empty one would silently change the run). Resume "
                    "from a checkpoint of the same setup."
                )
        if self.priorl_feed is not None:
            self.priorl_feed.load_state_dict(load_state(checkpoint, STATE_NAME))
        if self.priorl_replay is not None:
            state = load_state(checkpoint, REPLAY_STATE_NAME)
            for key in ("generation", "buffer"):
                if key not in state:
                    raise ValueError(f"{checkpoint}/{REPLAY_STATE_NAME}.json is missing the key {key!r}")
            self.priorl_replay.load_state_dict(state["buffer"])
            self.priorl_generation = int(state["generation"])
            self._priorl_skipped_empty = int(state.get("skipped_empty_mask", 0))


def _check_buffer(replay: Any) -> None:
    """Accept an empty priorl replay buffer and make it store TRL rows."""
    if not isinstance(replay, ReplayBuffer):
        raise TypeError(f"replay= takes a priorl ReplayBuffer (e.g. AdvReplayBuffer), got {type(replay).__name__}")
    if replay.codec is not TRL_ROW_CODEC:
        if replay.codec is not ROLLOUT_CODEC:
            raise ValueError(
                f"replay= buffer has its own record codec {replay.codec.name!r}; pass one built without codec="
            )
        if len(replay):
            raise ValueError(f"replay= buffer must be empty, it holds {len(replay)} rollouts")
        replay.codec = TRL_ROW_CODEC


def _with_index_column(dataset):
    """Return ``dataset`` with :data:`INDEX_COLUMN` = row position (added if missing, checked if present)."""
    try:
        from datasets import Dataset
    except ImportError as exc:  # pragma: no cover - TRL depends on datasets
        raise ImportError("PriorlGRPOTrainer needs the datasets package") from exc
    if not isinstance(dataset, Dataset):
        raise TypeError(
            f"PriorlGRPOTrainer needs train_dataset as a datasets.Dataset (indexable rows), "
            f"got {type(dataset).__name__}"
        )
    if INDEX_COLUMN in dataset.column_names:
        column = dataset[INDEX_COLUMN]
        bad = next((i for i, v in enumerate(column) if v != i), None)
        if bad is not None:
            raise ValueError(
                f"train_dataset column {INDEX_COLUMN!r} must equal the row position; row {bad} has {column[bad]!r}"
            )
        return dataset
    return dataset.add_column(INDEX_COLUMN, list(range(len(dataset))))
