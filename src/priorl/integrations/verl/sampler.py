"""priorl's problem sampler as a verl dataloader sampler.

Two classes, one implementation:

- :class:`PriorlProblemSampler`, the sampler itself. priorl's verl trainer
  (:mod:`priorl.integrations.verl.main_ppo`, any supported verl) builds it and calls its ``update`` once
  per step, after the rewards and before the checkpoint.
- :class:`PriorlCurriculumSampler`, the same sampler declared as a verl *curriculum sampler*, for
  verl 0.5 - 0.7.x's own ``main_ppo``, which loads it from the data config and calls ``update(batch)``
  after every step (verl 0.8 removed that hook)::

      python -m verl.trainer.main_ppo ... \\
          data.sampler.class_path=pkg://priorl.integrations.verl \\
          data.sampler.class_name=PriorlCurriculumSampler \\
          data.dataloader_num_workers=0 \\
          +data.sampler.priorl.retest_every=10        # optional: any PrioritizedSampler keyword

What it needs from the data and config (checked, with errors naming the row and value):

- every row's ``extra_info.index`` is its row position in the training data (0 .. M-1): verl reorders
  rows (``balance_batch``) and repeats them ``rollout.n`` times, so ``update`` groups rows by this index,
  never by position. ``update`` accepts only indices this sampler handed out and has not scored yet;
  anything else raises (typically several train files each numbered from 0, or rows dropped by
  ``data.filter_overlong_prompts``, which shifts positions);
- ``data.dataloader_num_workers=0``: worker processes would prefetch batches chosen from stale
  priorities;
- each rollout's score (``token_level_scores`` summed over tokens) in [0, 1], or ``reward_min`` /
  ``reward_max`` to rescale it (e.g. -1 and 1 for DAPO's reward).

Options (under ``data.sampler.priorl`` for the curriculum hook, ``priorl.sampler`` for priorl's trainer):
``kind`` (a sampler kind of :data:`priorl.registry.SAMPLERS`: ``prioritized``, the default,
:class:`~priorl.sampling.PrioritizedSampler`; ``prioritized-pass``, :class:`~priorl.sampling.PrioritizedPassSampler`;
or ``uniform``), ``seed`` (default ``data.seed``, else 0), ``reward_min``, ``reward_max``, and every option of
that kind, as in a run config's ``sampler:`` section (``retest_every``, ``estimator``, ... for ``prioritized``;
``candidates``, ``priority``, ``decay``, ... for ``prioritized-pass``).

**Checkpoints.** verl's ``StatefulDataLoader`` stores this sampler's ``state_dict`` in ``data.pt``. The
state is tensors and plain Python values, so it also loads with ``torch.load(weights_only=True)``. The
curriculum hook of verl 0.7 saves the dataloader *before* the step's ``update``, so the saved state has
not seen the last step's rewards: the sampler keeps that step's chunk as pending and, after a resume,
hands it out again first (the step is re-generated and scored instead of lost). priorl's trainer calls
``update`` before the checkpoint, so nothing is pending there.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sized

import numpy as np
import torch
from torch.utils.data import Sampler

from priorl.integrations.feed import ChunkFeed
from priorl.registry import build_part

try:  # verl <= 0.7 defines the curriculum interface; later versions dropped it (see the module docstring)
    from verl.experimental.dataset.sampler import AbstractCurriculumSampler as _CurriculumBase
except ImportError:  # pragma: no cover - depends on the installed verl
    _CurriculumBase = None

__all__ = ["PriorlCurriculumSampler", "PriorlProblemSampler"]

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


class PriorlProblemSampler(Sampler[int]):
    """verl dataloader sampler backed by a priorl sampler of any registered kind (by default the paper's
    :class:`~priorl.sampling.PrioritizedSampler`).

    Args:
        data_source: verl's training dataset (``len`` gives the problem count M).
        data_config: verl's ``data`` config: ``gen_batch_size`` or ``train_batch_size`` is the number of
            problems per step, ``seed`` the default seed.
        options: the options listed in the module docstring; ``None`` reads ``data_config.sampler.priorl``
            (where verl 0.7's curriculum hook finds them).
        rollout_n: rollouts per problem (verl's ``actor_rollout_ref.rollout.n``), when known: ``update``
            then also refuses a problem observed on more rows than it was generated for.

    Each pass yields ``M // batch_size`` batches of distinct problem indices. Each batch is drawn when
    the DataLoader reaches it, from the priorities known then.
    """

    def __init__(
        self,
        data_source: Sized,
        data_config,
        *,
        options: Mapping | None = None,
        rollout_n: int | None = None,
    ) -> None:
        self.data_source = data_source
        num_problems = len(data_source)
        batch_size = _get(data_config, "gen_batch_size") or _get(data_config, "train_batch_size")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"data.train_batch_size must be a positive int, got {batch_size!r}")
        if batch_size > num_problems:
            raise ValueError(f"data.train_batch_size {batch_size} is larger than the dataset ({num_problems} rows)")
        if rollout_n is not None and (isinstance(rollout_n, bool) or not isinstance(rollout_n, int) or rollout_n < 1):
            raise ValueError(f"rollout_n must be a positive int, got {rollout_n!r}")
        where = "data.sampler.priorl" if options is None else "priorl.sampler"
        if options is None:
            options = _get(_get(data_config, "sampler"), "priorl", {}) or {}
        opts = {k: v for k, v in dict(options).items() if v is not None}
        kind = opts.get("kind", "prioritized")
        seed = int(opts.get("seed", _get(data_config, "seed", 0)))
        self.reward_min = float(opts.get("reward_min", 0.0))
        self.reward_max = float(opts.get("reward_max", 1.0))
        self._where = where
        if not self.reward_max > self.reward_min:
            raise ValueError(f"{where}.reward_max ({self.reward_max}) must exceed reward_min ({self.reward_min})")
        kwargs = {k: v for k, v in opts.items() if k not in _RESERVED}
        sampler = build_part("sampler", kind, kwargs, where, num_problems=num_problems, seed=seed)
        self.sampler = sampler
        self.feed = ChunkFeed(sampler, batch_size)
        self.batch_size = batch_size
        self.rollout_n = rollout_n
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
        rollout). Rows may come in any order. Every index must be one this sampler handed out and still
        awaits; anything else raises ``ValueError`` before anything is observed. Every chunk handed out so
        far is then retired: with ``dataloader_num_workers=0`` they all belong to this step.
        """
        infos = batch.non_tensor_batch.get("extra_info")
        if infos is None:
            raise ValueError(
                "PriorlProblemSampler.update: the batch has no 'extra_info' column; every training row "
                "needs extra_info.index = its row position"
            )
        if "token_level_scores" not in batch.batch.keys():
            raise ValueError(
                "PriorlProblemSampler.update: the batch has no 'token_level_scores'; "
                f"it has {sorted(batch.batch.keys())}"
            )
        scores = batch.batch["token_level_scores"].sum(dim=-1).detach().cpu().double().tolist()
        if len(scores) != len(infos):
            raise ValueError(f"batch has {len(scores)} scores but {len(infos)} extra_info rows")
        # How many pending chunks hold each problem: an index outside them was never handed out (or was
        # scored already), and with rollout_n known, no problem may show up on more rows than generated.
        awaited = Counter(i for chunk in self.feed.pending for i in set(chunk))
        indices = []
        for row, info in enumerate(infos):
            index = info.get("index") if isinstance(info, dict) else None
            if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
                raise ValueError(
                    f"batch row {row}: extra_info.index must be the int row position of the problem, got {index!r}"
                )
            if int(index) not in awaited:
                raise ValueError(
                    f"batch row {row}: extra_info.index {index} is not a problem this sampler handed out and still "
                    f"awaits ({len(awaited)} awaited: {self._preview(awaited)}). extra_info.index must be "
                    f"the row's position in the training data (0 .. {len(self.data_source) - 1}); likely causes: "
                    "several data.train_files each numbered from 0, rows dropped by data.filter_overlong_prompts "
                    "(positions shift), or the same batch passed to update twice"
                )
            indices.append(int(index))
        seen: Counter[int] = Counter()
        span = self.reward_max - self.reward_min
        groups: dict[int, list[float]] = {}
        for row, (index, score) in enumerate(zip(indices, scores, strict=True)):
            seen[index] += 1
            if self.rollout_n is not None and seen[index] > self.rollout_n * awaited[index]:
                raise ValueError(
                    f"batch row {row}: problem {index} appears on {seen[index]} rows, more than the "
                    f"{self.rollout_n * awaited[index]} rollouts generated for it; rows of different problems share "
                    "this extra_info.index (several data.train_files each numbered from 0?)"
                )
            reward = (score - self.reward_min) / span
            if not -1e-6 <= reward <= 1 + 1e-6:
                raise ValueError(
                    f"batch row {row} (problem {index}): score {score!r} is outside [reward_min, reward_max] = "
                    f"[{self.reward_min}, {self.reward_max}]; set {self._where}.reward_min/reward_max"
                )
            groups.setdefault(index, []).append(min(max(reward, 0.0), 1.0))
        if groups:
            self.feed.observe(list(groups), list(groups.values()))
        self.feed.retire_all()

    @staticmethod
    def _preview(awaited: Counter) -> str:
        ids = sorted(awaited)
        return str(ids) if len(ids) <= 8 else f"[{', '.join(map(str, ids[:8]))}, ...]"

    # ------------------------------------------------------------------ state
    def state_dict(self, *, as_numpy: bool = False) -> dict:
        """Sampler state, pending chunks and position in the pass.

        Tensors and plain values (what verl's ``data.pt`` holds), or with ``as_numpy`` numpy arrays and
        plain values (for :func:`priorl.statefile.save_state`).
        """
        state = {"feed": self.feed.state_dict(), "epoch_pos": self._epoch_pos}
        return state if as_numpy else _to_torch(state)

    def load_state_dict(self, state: dict) -> None:
        """Restore; the next pass resumes where the saved one stopped, pending chunks first.

        Accepts the tensor form (from ``data.pt``) and the numpy form (from safetensors + JSON). A state
        saved at the very end of a pass resumes at the start of the next one.
        """
        state = _to_numpy(state)
        self.feed.load_state_dict(state["feed"])
        per_pass = len(self.data_source) // self.batch_size
        start = max(0, int(state["epoch_pos"]) - len(state["feed"]["pending"]))
        self._start = start if start < per_pass else 0

    def metrics(self) -> dict:
        """The underlying sampler's metrics (pool sizes, informative fraction, ...)."""
        return self.sampler.metrics()


if _CurriculumBase is not None:

    class PriorlCurriculumSampler(PriorlProblemSampler, _CurriculumBase):
        """:class:`PriorlProblemSampler` as a verl 0.5 - 0.7.x curriculum sampler.

        verl's ``create_rl_sampler`` builds it from ``data.sampler.class_path/class_name`` with
        ``(data_source, data_config)`` and the trainer calls ``update(batch)`` after every step. Options
        come from ``data.sampler.priorl``.
        """

        def __init__(self, data_source: Sized, data_config) -> None:
            super().__init__(data_source, data_config)

else:  # pragma: no cover - depends on the installed verl

    class PriorlCurriculumSampler(PriorlProblemSampler):
        """Kept importable on verl >= 0.8, which has no curriculum hook: nothing there calls ``update``.

        Use ``python -m priorl.integrations.verl.main_ppo`` (docs/scale.md) instead of verl's ``main_ppo``.
        """

        def __init__(self, data_source: Sized, data_config) -> None:
            super().__init__(data_source, data_config)
