"""priorl's problem sampler inside verl: :class:`PrioritizedCurriculumSampler` (extra ``priorl[verl]``).

verl 0.5 – 0.7.x load a curriculum sampler from the data config and call its ``update(batch)`` after
every training step. Point it at this class::

    python -m verl.trainer.main_ppo ... \\
        data.sampler.class_path=pkg://priorl.integrations.verl \\
        data.sampler.class_name=PrioritizedCurriculumSampler \\
        data.dataloader_num_workers=0 \\
        +data.sampler.priorl.retest_every=10        # optional: any PrioritizedSampler keyword

What it needs from the data and config (checked, with errors naming the row and value):

- every row's ``extra_info.index`` is its row position in the training file (0 .. M-1): verl reorders
  rows (``balance_batch``) and repeats them ``rollout.n`` times, so ``update`` groups rows by this index,
  never by position;
- ``data.dataloader_num_workers=0`` (verl asserts it too): worker processes would prefetch batches
  chosen from stale priorities;
- each rollout's score (``token_level_scores`` summed over tokens) in [0, 1], or
  ``+data.sampler.priorl.reward_min`` / ``reward_max`` to rescale it (e.g. -1 and 1 for DAPO's reward).

Options under ``data.sampler.priorl``: ``kind`` (``prioritized``, the default, or ``uniform``), ``seed``
(default ``data.seed``, else 0), ``reward_min``, ``reward_max``, and every keyword of
:class:`~priorl.sampling.PrioritizedSampler` (``retest_every``, ``retest_fraction``, ``estimator``, ...).

**Checkpoints.** verl's ``StatefulDataLoader`` stores this sampler's ``state_dict`` in ``data.pt``. The
state is tensors and plain Python values, so it also loads with ``torch.load(weights_only=True)``. verl
saves the dataloader *before* the step's ``update``, so the saved state has not seen the last step's
rewards. The sampler keeps that step's chunk as pending and, after a resume, hands it out again first:
the step is re-generated and scored instead of lost.

**verl 0.8 and later removed this hook** (``create_rl_sampler`` ignores ``data.sampler`` and the trainer
no longer calls ``update``). There the sampler still works but must be wired in code: pass it as
``RayPPOTrainer(..., train_sampler=PrioritizedCurriculumSampler(train_dataset, config.data))`` and call
``trainer.train_dataloader.sampler.update(batch)`` once per step after the rewards are computed. See
``docs/scale.md``; that path is not exercised by priorl's tests.
"""

from __future__ import annotations

from collections.abc import Iterator, Sized

import numpy as np
import torch

from priorl.integrations.feed import ChunkFeed
from priorl.sampling import PrioritizedSampler, UniformSampler

try:  # verl <= 0.7 defines the interface; later versions dropped it (see the module docstring)
    from verl.experimental.dataset.sampler import AbstractCurriculumSampler as _Base
except ImportError:  # pragma: no cover - depends on the installed verl
    from torch.utils.data import Sampler as _Base

_RESERVED = ("kind", "seed", "reward_min", "reward_max")


def _get(config, key, default=None):
    if config is None:
        return default
    try:
        value = config.get(key, default)
    except AttributeError:
        value = getattr(config, key, default)
    return default if value is None else value


def _to_torch(tree):
    if isinstance(tree, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(tree))
    if isinstance(tree, dict):
        return {k: _to_torch(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_to_torch(v) for v in tree]
    return tree


def _to_numpy(tree):
    if isinstance(tree, torch.Tensor):
        return tree.numpy()
    if isinstance(tree, dict):
        return {k: _to_numpy(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_to_numpy(v) for v in tree]
    return tree


class PrioritizedCurriculumSampler(_Base):
    """verl curriculum sampler backed by priorl's :class:`~priorl.sampling.PrioritizedSampler`.

    Args:
        data_source: verl's training dataset (``len`` gives the problem count M).
        data_config: verl's ``data`` config: ``gen_batch_size`` or ``train_batch_size`` is the number of
            problems per step, ``seed`` the default seed, ``sampler.priorl`` the options listed in the
            module docstring.

    Each pass yields ``M // batch_size`` batches of distinct problem indices. Each batch is drawn when
    the DataLoader reaches it, from the priorities known then.
    """

    def __init__(self, data_source: Sized, data_config) -> None:
        self.data_source = data_source
        num_problems = len(data_source)
        batch_size = _get(data_config, "gen_batch_size") or _get(data_config, "train_batch_size")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"data.train_batch_size must be a positive int, got {batch_size!r}")
        if batch_size > num_problems:
            raise ValueError(f"data.train_batch_size {batch_size} is larger than the dataset ({num_problems} rows)")
        opts = dict(_get(_get(data_config, "sampler"), "priorl", {}) or {})
        kind = opts.get("kind", "prioritized")
        seed = int(opts.get("seed", _get(data_config, "seed", 0)))
        self.reward_min = float(opts.get("reward_min", 0.0))
        self.reward_max = float(opts.get("reward_max", 1.0))
        if not self.reward_max > self.reward_min:
            raise ValueError(
                f"data.sampler.priorl.reward_max ({self.reward_max}) must exceed reward_min ({self.reward_min})"
            )
        kwargs = {k: v for k, v in opts.items() if k not in _RESERVED}
        if kind == "prioritized":
            try:
                sampler = PrioritizedSampler(num_problems, seed=seed, **kwargs)
            except TypeError as exc:
                raise ValueError(f"data.sampler.priorl has an option PrioritizedSampler does not take: {exc}") from None
        elif kind == "uniform":
            if kwargs:
                raise ValueError(f"data.sampler.priorl options {sorted(kwargs)} do not apply to kind=uniform")
            sampler = UniformSampler(num_problems, seed=seed)
        else:
            raise ValueError(f"data.sampler.priorl.kind must be 'prioritized' or 'uniform', got {kind!r}")
        self.sampler = sampler
        self.feed = ChunkFeed(sampler, batch_size)
        self.batch_size = batch_size
        self._epoch_pos = 0  # batches handed out in the current pass
        self._start = 0  # where the next pass starts (set by load_state_dict)

    # ------------------------------------------------------------------ torch Sampler
    def __iter__(self) -> Iterator[int]:
        per_pass = len(self.data_source) // self.batch_size
        start, self._start = self._start, 0
        self._epoch_pos = start
        for _ in range(start, per_pass):
            chunk = self.feed.next_chunk()  # drawn only now, from the priorities known now
            self._epoch_pos += 1
            yield from chunk

    def __len__(self) -> int:
        return (len(self.data_source) // self.batch_size) * self.batch_size

    # ------------------------------------------------------------------ feedback
    def update(self, batch, step_num: int | None = None) -> None:
        """Group the batch's rollouts by ``extra_info.index``, read their scores, observe them.

        ``batch`` is verl's ``DataProto`` after reward computation: ``batch.batch["token_level_scores"]``
        (one row per rollout, summed over tokens) and ``batch.non_tensor_batch["extra_info"]`` (one dict per
        rollout). Rows may come in any order. Every chunk handed out so far is retired: with
        ``dataloader_num_workers=0`` they all belong to this step.
        """
        infos = batch.non_tensor_batch.get("extra_info")
        if infos is None:
            raise ValueError(
                "PrioritizedCurriculumSampler.update: the batch has no 'extra_info' column; every training row "
                "needs extra_info.index = its row position"
            )
        if "token_level_scores" not in batch.batch.keys():
            raise ValueError(
                "PrioritizedCurriculumSampler.update: the batch has no 'token_level_scores'; "
                f"it has {sorted(batch.batch.keys())}"
            )
        scores = batch.batch["token_level_scores"].sum(dim=-1).detach().cpu().double().tolist()
        if len(scores) != len(infos):
            raise ValueError(f"batch has {len(scores)} scores but {len(infos)} extra_info rows")
        span = self.reward_max - self.reward_min
        groups: dict[int, list[float]] = {}
        for row, (info, score) in enumerate(zip(infos, scores, strict=True)):
            index = info.get("index") if isinstance(info, dict) else None
            if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
                raise ValueError(
                    f"batch row {row}: extra_info.index must be the int row position of the problem, got {index!r}"
                )
            reward = (score - self.reward_min) / span
            if not -1e-6 <= reward <= 1 + 1e-6:
                raise ValueError(
                    f"batch row {row} (problem {int(index)}): score {score!r} is outside [reward_min, reward_max] = "
                    f"[{self.reward_min}, {self.reward_max}]; set +data.sampler.priorl.reward_min/reward_max"
                )
            groups.setdefault(int(index), []).append(min(max(reward, 0.0), 1.0))
        if groups:
            self.feed.observe(list(groups), list(groups.values()))
        self.feed.retire_all()

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """Sampler state, pending chunks and position in the pass: tensors and plain values only."""
        return _to_torch({"feed": self.feed.state_dict(), "epoch_pos": self._epoch_pos})

    def load_state_dict(self, state: dict) -> None:
        """Restore; the next pass resumes where the saved one stopped, pending chunks first."""
        state = _to_numpy(state)
        self.feed.load_state_dict(state["feed"])
        self._start = max(0, int(state["epoch_pos"]) - len(state["feed"]["pending"]))

    def metrics(self) -> dict:
        """The underlying sampler's metrics (pool sizes, informative fraction, ...)."""
        return self.sampler.metrics()
