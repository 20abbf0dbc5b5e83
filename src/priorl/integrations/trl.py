"""priorl's problem sampler inside TRL: :class:`PrioritizedGRPOTrainer` (extra ``priorl[trl]``).

A ``trl.GRPOTrainer`` whose prompts come from a priorl sampler and whose rewards feed it back::

    from priorl.integrations.trl import PrioritizedGRPOTrainer
    from priorl.sampling import PrioritizedSampler

    trainer = PrioritizedGRPOTrainer(
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

**Rollout replay is not offered inside TRL.** TRL's override points do not admit it cleanly: (1) the
generation batch is shuffled and split into ``steps_per_generation`` equal slices, so extra replayed rows
change every slice's size and TRL's ``num_items_in_batch`` normalization; (2) a replayed row needs its
behaviour log-probs as ``old_per_token_logps`` while TRL either recomputes them for the whole batch with
the current model (``num_iterations > 1``) or uses the detached current log-probs, which would give a
replayed rollout a ratio of 1; (3) vLLM importance-sampling corrections are computed per generation batch
and would have to be faked for replayed rows. Use priorl's own trainer (``priorl train``) for replay.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator

import torch
from torch.utils.data import Sampler

from priorl.integrations.feed import ChunkFeed
from priorl.statefile import load_state, save_state

try:
    from trl import GRPOTrainer
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("priorl.integrations.trl needs TRL: pip install 'priorl[trl]' (or pip install trl)") from exc

logger = logging.getLogger(__name__)

INDEX_COLUMN = "priorl_index"
"""Column added to the training dataset: each row's position, the problem id the sampler uses."""

STATE_NAME = "priorl_sampler"


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
            "reward_transform= (e.g. lambda r: float(r > 0)) to PrioritizedGRPOTrainer to map rewards to [0, 1]."
        )
    return reward


class PrioritizedGRPOTrainer(GRPOTrainer):
    """A ``trl.GRPOTrainer`` that draws its prompts from a priorl sampler and feeds rewards back to it.

    Args:
        sampler: a priorl sampler over the training set's rows (``PrioritizedSampler(len(train_dataset))``
            or ``UniformSampler``). Every process must build it identically (same seed).
        reward_transform: maps the combined reward of one completion (the ``reward_weights``-weighted sum
            of ``reward_funcs``, as TRL computes it) to [0, 1] for the sampler; by default the reward
            must already be in [0, 1] and anything else raises a ValueError naming the value.
        model, reward_funcs, args, train_dataset, **kwargs: everything ``trl.GRPOTrainer`` takes;
            ``train_dataset`` must be a ``datasets.Dataset`` (an iterable dataset cannot be indexed).

    Attributes:
        priorl_sampler: the sampler. ``priorl_feed``: its :class:`ChunkFeed`.
    """

    def __init__(
        self,
        model,
        reward_funcs=None,
        args=None,
        train_dataset=None,
        *more,
        sampler,
        reward_transform: Callable[[float], float] | None = None,
        **kwargs,
    ) -> None:
        train_dataset = _with_index_column(train_dataset)
        num_problems = getattr(sampler, "num_problems", None)
        if num_problems != len(train_dataset):
            raise ValueError(
                f"the sampler covers {num_problems} problems but train_dataset has {len(train_dataset)} rows; "
                "build it as PrioritizedSampler(len(train_dataset), seed=...)"
            )
        self.priorl_sampler = sampler
        self.priorl_transform = reward_transform or _check_unit_interval
        super().__init__(model, reward_funcs, args, train_dataset, *more, **kwargs)
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
                "PrioritizedGRPOTrainer sets ignore_data_skip=True: the sampler's saved state resumes the prompt "
                "stream exactly, so the loader must not be fast-forwarded."
            )
            self.args.ignore_data_skip = True

    # ------------------------------------------------------------------ prompts
    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        if INDEX_COLUMN not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, INDEX_COLUMN]

    def _get_train_sampler(self, dataset=None) -> Sampler:
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
        if self.model.training:
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
    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

            folder = os.path.join(
                self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            )
            save_state(folder, STATE_NAME, self.priorl_feed.state_dict())

    def _load_optimizer_and_scheduler(self, checkpoint):
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is None:
            return
        if not os.path.exists(os.path.join(checkpoint, f"{STATE_NAME}.json")):
            raise FileNotFoundError(
                f"{checkpoint} has no {STATE_NAME}.json: it was not written by PrioritizedGRPOTrainer, so the "
                "sampler cannot be restored. Resume from a PrioritizedGRPOTrainer checkpoint."
            )
        self.priorl_feed.load_state_dict(load_state(checkpoint, STATE_NAME))


def _with_index_column(dataset):
    """Return ``dataset`` with :data:`INDEX_COLUMN` = row position (added if missing, checked if present)."""
    try:
        from datasets import Dataset
    except ImportError as exc:  # pragma: no cover - TRL depends on datasets
        raise ImportError("PrioritizedGRPOTrainer needs the datasets package") from exc
    if not isinstance(dataset, Dataset):
        raise TypeError(
            f"PrioritizedGRPOTrainer needs train_dataset as a datasets.Dataset (indexable rows), "
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
