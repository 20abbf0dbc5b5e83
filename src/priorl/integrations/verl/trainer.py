"""verl's ``RayPPOTrainer`` with priorl's problem sampler and rollout replay: five methods overridden.

verl's PPO step (``RayPPOTrainer.fit``, the same order in verl 0.7.x and 0.9.x): generate, score, old and
reference log-probs, advantages, ``_update_critic`` (with a critic), ``_update_actor``, then
``_save_checkpoint`` every ``trainer.save_freq`` steps. :class:`PriorlRayPPOTrainer` hooks in at:

- ``_create_dataloader``: the training loader draws from :class:`PriorlProblemSampler`;
- ``_update_actor``: the step's rewards go to the sampler (before the checkpoint, so a checkpoint never
  holds a step whose rewards the sampler has not seen), then :class:`VerlReplay` adds replayed rows to
  the actor's batch, the actor is updated, and the step's fresh rows are stored;
- ``_update_critic``: during ``trainer.critic_warmup`` verl skips the actor update, so the rewards go to
  the sampler here instead;
- ``_save_checkpoint`` / ``_load_checkpoint``: ``global_step_N/priorl_sampler.{json,safetensors}`` and
  ``priorl_replay.{json,safetensors}`` (no pickle), written before verl marks the checkpoint complete.
  They are restored on resume even where verl skips ``data.pt`` (verl 0.9 does at epoch boundaries).

Options come from the config's ``priorl`` section (``config/priorl_ppo_trainer.yaml``); everything that
can be checked before Ray starts is checked by :func:`priorl_options`, with errors naming the setting.
Defaults: replay on, the problem sampler off (verl's own sampler picks the prompts), as in priorl's own
trainer (the adv-replay preset; benchmarks/RESULTS.md round 7). With both off every override below
only calls verl's own method: the trainer is verl's ``RayPPOTrainer``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from verl.trainer.ppo.ray_trainer import RayPPOTrainer

from priorl.integrations.verl.replay import VerlReplay
from priorl.integrations.verl.sampler import PriorlProblemSampler
from priorl.registry import REPLAYS
from priorl.statefile import load_state, save_state

__all__ = ["PriorlOptions", "PriorlRayPPOTrainer", "priorl_options"]

SAMPLER_STATE = "priorl_sampler"
REPLAY_STATE = "priorl_replay"
_REPLAY_KEYS = ("enable", "seed", *REPLAYS["adv-replay"].options.model_fields)
# Estimators whose advantages vary along a response: replay needs one advantage per rollout.
_PER_TOKEN_ESTIMATORS = ("gae",)
# Defaults for a missing ``enable`` (those of config/priorl_ppo_trainer.yaml): replay on, the sampler off.
SAMPLER_DEFAULT, REPLAY_DEFAULT = False, True
# The sampler options the entry point's config always carries, at their defaults there.
_SAMPLER_DEFAULTS = {"kind": "prioritized", "seed": None, "reward_min": 0.0, "reward_max": 1.0}
_REPLAY_OFF = "priorl.replay.enable=false turns replay off"


@dataclass(frozen=True)
class PriorlOptions:
    """The parsed ``priorl`` section: sampler and replay options, ``None`` for a disabled piece."""

    sampler: dict[str, Any] | None
    replay: dict[str, Any] | None


def _plain(node) -> dict[str, Any]:
    from omegaconf import DictConfig, OmegaConf

    if node is None:
        return {}
    return dict(OmegaConf.to_container(node, resolve=True)) if isinstance(node, DictConfig) else dict(node)


def priorl_options(config) -> PriorlOptions:
    """Parse and check ``config.priorl`` against the rest of verl's config; ``ValueError`` names the setting."""
    section = config.get("priorl")
    if section is None:
        raise ValueError(
            "the config has no 'priorl' section: run python -m priorl.integrations.verl.main_ppo, whose config "
            "(priorl_ppo_trainer.yaml) adds it"
        )
    sampler, replay = _plain(section.get("sampler")), _plain(section.get("replay"))
    data = config.data
    rollout_n = int(config.actor_rollout_ref.rollout.n)

    sampler_on = bool(sampler.pop("enable", SAMPLER_DEFAULT))
    if not sampler_on:
        # Options for a sampler that is off would be ignored without a word (the sampler was on by default
        # before: a command written then would silently run without it).
        given = sorted(k for k, v in sampler.items() if k not in _SAMPLER_DEFAULTS or v != _SAMPLER_DEFAULTS[k])
        if given:
            raise ValueError(
                f"priorl.sampler options {given} are set, but the sampler is off (priorl.sampler.enable=false, "
                "the default): add priorl.sampler.enable=true to use it, or drop them"
            )
    if sampler_on:
        workers = data.get("dataloader_num_workers", 0)
        if workers != 0:
            raise ValueError(
                f"data.dataloader_num_workers={workers}: priorl's sampler needs 0 (worker processes would prefetch "
                "batches drawn from stale priorities)"
            )
        hook = data.get("sampler")
        if hook is not None and hook.get("class_path") is not None:
            raise ValueError(
                f"data.sampler.class_path={hook.get('class_path')!r}: priorl's trainer builds its sampler itself; "
                "remove data.sampler.* and pass the options as priorl.sampler.*"
            )

    replay_on = bool(replay.get("enable", REPLAY_DEFAULT))
    unknown = sorted(set(replay) - set(_REPLAY_KEYS))
    if unknown:
        raise ValueError(f"priorl.replay has unknown options {unknown}; it takes {list(_REPLAY_KEYS)}")
    replay.pop("enable", None)
    if replay_on:
        estimator = str(config.algorithm.adv_estimator)
        if estimator in _PER_TOKEN_ESTIMATORS:
            raise ValueError(
                f"algorithm.adv_estimator={estimator}: priorl replay (on by default) needs one advantage per "
                "rollout. Either set algorithm.adv_estimator=grpo (or rloo or another outcome-level estimator), "
                "or run without replay: priorl.replay.enable=false (verl's own default estimator is gae)"
            )
        actor = config.actor_rollout_ref.actor
        if actor.get("use_prefix_grouper", False):
            raise ValueError(
                f"actor_rollout_ref.actor.use_prefix_grouper=True is not supported with priorl.replay: {_REPLAY_OFF}"
            )
        if replay.get("seed") is None:
            replay["seed"] = int(data.get("seed") or 0)
        ratio = VerlReplay(**replay).buffer.replay_ratio  # also checks every option
        mini = int(actor.ppo_mini_batch_size) * rollout_n
        fresh = int(data.get("gen_batch_size") or data.train_batch_size) * rollout_n
        if ratio > 0 and round(round(ratio * fresh) / mini) == 0:
            raise ValueError(
                f"priorl.replay.replay_ratio={ratio} × {fresh} fresh rows = {round(ratio * fresh)} replayed rows, "
                f"which rounds to 0 whole actor mini-batches of {mini} rows (ppo_mini_batch_size × rollout.n): "
                f"replay would never add a row. Raise replay_ratio or lower ppo_mini_batch_size; {_REPLAY_OFF}"
            )
    return PriorlOptions(sampler=sampler if sampler_on else None, replay=replay if replay_on else None)


def _numeric(prefix: str, metrics: dict) -> dict[str, float]:
    """The numbers among ``metrics``, prefixed: verl averages each logged value."""
    return {prefix + k: float(v) for k, v in metrics.items() if isinstance(v, int | float | np.number)}


class PriorlRayPPOTrainer(RayPPOTrainer):
    """verl's ``RayPPOTrainer`` with priorl's sampler and replay (see the module docstring).

    Takes exactly ``RayPPOTrainer``'s arguments; ``config`` must have the ``priorl`` section.
    """

    def __init__(self, config, *args, **kwargs) -> None:
        # Parsed before verl's constructor, which builds the dataloader through _create_dataloader.
        self.priorl = priorl_options(config)
        self.priorl_sampler: PriorlProblemSampler | None = None
        self.priorl_replay = VerlReplay(**self.priorl.replay) if self.priorl.replay is not None else None
        self._priorl_observed_step: int | None = None
        super().__init__(config, *args, **kwargs)

    # ------------------------------------------------------------------ data
    def _create_dataloader(self, train_dataset, val_dataset, collate_fn, train_sampler):
        if self.priorl.sampler is not None:
            if train_dataset is None:
                raise ValueError("PriorlRayPPOTrainer needs the train_dataset (verl's TaskRunner passes it)")
            train_sampler = PriorlProblemSampler(
                train_dataset,
                self.config.data,
                options=self.priorl.sampler,
                rollout_n=int(self.config.actor_rollout_ref.rollout.n),
            )
            self.priorl_sampler = train_sampler
        super()._create_dataloader(train_dataset, val_dataset, collate_fn, train_sampler)

    # ------------------------------------------------------------------ the step
    def _priorl_observe(self, batch) -> None:
        """The step's rewards to the sampler, once per step (errors name the row)."""
        step = getattr(self, "global_steps", None)
        if self.priorl_sampler is None or self._priorl_observed_step == step:
            return
        self.priorl_sampler.update(batch)
        self._priorl_observed_step = step

    def _update_critic(self, batch):
        if self.config.trainer.critic_warmup > self.global_steps:  # verl skips _update_actor this step
            self._priorl_observe(batch)
        return super()._update_critic(batch)

    def _update_actor(self, batch):
        self._priorl_observe(batch)
        if self.priorl_replay is None:
            output = super()._update_actor(batch)
        else:
            try:
                actor_batch, fresh_rows = self.priorl_replay.compose(
                    batch, self.global_steps, self.priorl_replay_unit()
                )
            except ValueError as exc:  # a batch replay cannot take; replay is on by default, so say how to stop it
                raise ValueError(f"{exc} ({_REPLAY_OFF})") from exc
            if actor_batch is not batch and self.config.trainer.balance_batch:
                # The same token balancing across data-parallel ranks verl gave the fresh batch.
                self._balance_batch(actor_batch, metrics={})
            output = super()._update_actor(actor_batch)
            self.priorl_replay.store(fresh_rows)
        metrics = output.meta_info.setdefault("metrics", {})
        if self.priorl_sampler is not None:
            metrics.update(_numeric("priorl/sampler/", self.priorl_sampler.metrics()))
        if self.priorl_replay is not None:
            metrics.update(_numeric("priorl/replay/", self.priorl_replay.metrics()))
        return output

    def priorl_replay_unit(self) -> int:
        """Rows per replay unit: lcm(ppo_mini_batch_size × rollout.n, actor data-parallel size)."""
        mini = int(self.config.actor_rollout_ref.actor.ppo_mini_batch_size) * int(
            self.config.actor_rollout_ref.rollout.n
        )
        return math.lcm(mini, int(self._get_dp_size(self.actor_rollout_wg, "actor")))

    # ------------------------------------------------------------------ checkpoints
    def _priorl_folder(self, *, resuming: bool = False) -> str:
        """``global_step_N`` of this step, or of the checkpoint verl resumed from (as verl resolves it)."""
        trainer = self.config.trainer
        if resuming and trainer.resume_mode == "resume_path":
            folder = trainer.resume_from_path
        else:
            folder = os.path.join(trainer.default_local_dir, f"global_step_{self.global_steps}")
        return folder if os.path.isabs(folder) else os.path.join(os.getcwd(), folder)

    def _save_checkpoint(self):
        # Before verl's save, which ends by marking the checkpoint complete (latest_checkpointed_iteration).
        folder = self._priorl_folder()
        if self.priorl_sampler is not None:
            save_state(folder, SAMPLER_STATE, self.priorl_sampler.state_dict(as_numpy=True))
        if self.priorl_replay is not None:
            save_state(folder, REPLAY_STATE, self.priorl_replay.state_dict())
        return super()._save_checkpoint()

    def _load_checkpoint(self):
        result = super()._load_checkpoint()
        if getattr(self, "global_steps", 0):  # verl resumed from global_step_N
            folder = self._priorl_folder(resuming=True)
            for name, target in ((SAMPLER_STATE, self.priorl_sampler), (REPLAY_STATE, self.priorl_replay)):
                if target is None:
                    continue
                try:
                    state = load_state(folder, name)
                except ValueError as exc:
                    raise ValueError(
                        f"cannot resume priorl's {name.split('_')[1]} from {folder}: {exc} (was the checkpoint "
                        "written by priorl's trainer with the same priorl.sampler.enable / priorl.replay.enable?)"
                    ) from None
                target.load_state_dict(state)
        return result
