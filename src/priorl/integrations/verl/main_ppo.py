"""``python -m priorl.integrations.verl.main_ppo``: verl's PPO entry point with priorl's sampler and replay.

Stands in for ``python -m verl.trainer.main_ppo``: the same hydra arguments (verl's ``ppo_trainer`` config is
the base of ``config/priorl_ppo_trainer.yaml``), plus the ``priorl.*`` section. Rollout replay is on by
default and the prioritized problem sampler off: in priorl's own tuned studies (benchmarks/RESULTS.md round
7, not run in verl) uniform problems with advantage-prioritized replay needed fewer completions than tuned
GRPO, the prioritized samplers did not. Replay needs an outcome-level estimator; verl's default is gae::

    python -m priorl.integrations.verl.main_ppo <verl arguments> algorithm.adv_estimator=grpo \\
        priorl.replay.replay_ratio=0.5 \\
        priorl.sampler.enable=true +priorl.sampler.retest_every=10   # to add the sampler

With ``priorl.replay.enable=false`` and the sampler off, the run is verl's own PPO (priorl adds nothing).

It runs verl's own ``TaskRunner`` (worker roles, tokenizer, datasets, reward: verl's code for the installed
version) with :class:`~priorl.integrations.verl.trainer.PriorlRayPPOTrainer` in place of verl's
``RayPPOTrainer``. Supported: verl 0.7.x and 0.9.x. On verl 0.9 it runs the ``RayPPOTrainer`` that
``trainer.use_v1=false`` selects (this config's default); verl 0.9's TransferQueue trainer is not supported.
"""

from __future__ import annotations

import contextlib
import sys

import hydra
import verl

from priorl.integrations.verl.trainer import PriorlOptions, PriorlRayPPOTrainer, priorl_options

__all__ = ["PriorlTaskRunner", "check_config", "main", "run"]

SUPPORTED = ((0, 7), (0, 9))
VERL_LINE = tuple(int(part) for part in verl.__version__.split(".")[:2])
if VERL_LINE not in SUPPORTED:
    raise ImportError(
        f"priorl.integrations.verl.main_ppo supports verl 0.7.x and 0.9.x; verl {verl.__version__} is installed"
    )


def _verl_task_runner():
    """verl's TaskRunner class (unwrapped from ray.remote) and the module whose ``RayPPOTrainer`` it builds."""
    if VERL_LINE >= (0, 9):
        from verl.trainer import main_ppo_v0 as module  # the RayPPOTrainer runner (use_v1=false)
    else:
        from verl.trainer import main_ppo as module
    runner = module.TaskRunner
    meta = getattr(runner, "__ray_metadata__", None)  # verl 0.9 declares it with @ray.remote
    if meta is not None:
        runner = meta.modified_class.__ray_actor_class__
    return runner, module


_VerlTaskRunner, _RUNNER_MODULE = _verl_task_runner()


@contextlib.contextmanager
def _trainer_class(module, cls):
    original = module.RayPPOTrainer
    module.RayPPOTrainer = cls
    try:
        yield
    finally:
        module.RayPPOTrainer = original


class PriorlTaskRunner(_VerlTaskRunner):
    """verl's ``TaskRunner`` building :attr:`trainer_cls` instead of ``RayPPOTrainer``.

    verl's ``run`` names the trainer class through its module's global ``RayPPOTrainer``; for the duration
    of ``run`` (inside this Ray actor's own process) that name points at :attr:`trainer_cls`, and every
    other step of verl's setup runs unchanged.
    """

    trainer_cls = PriorlRayPPOTrainer

    def run(self, config):
        with _trainer_class(_RUNNER_MODULE, self.trainer_cls):
            return super().run(config)


def check_config(config) -> PriorlOptions:
    """Everything checkable before Ray starts; ``ValueError`` names the setting."""
    if VERL_LINE >= (0, 9) and config.trainer.get("use_v1", False):
        raise ValueError(
            "trainer.use_v1=true: priorl runs verl's RayPPOTrainer (trainer.use_v1=false, this entry point's "
            "default); verl's TransferQueue trainer has no place for priorl's sampler or replay"
        )
    return priorl_options(config)


def run(config, task_runner_class=None) -> None:
    """What verl's ``main`` does after parsing, with priorl's runner (``task_runner_class`` for tests)."""
    check_config(config)
    from verl.utils.device import auto_set_device

    auto_set_device(config)
    if VERL_LINE < (0, 9):
        from verl.experimental.reward_loop import migrate_legacy_reward_impl

        config = migrate_legacy_reward_impl(config)
    from verl.trainer.main_ppo import run_ppo

    if task_runner_class is None:
        import ray

        task_runner_class = ray.remote(num_cpus=1)(PriorlTaskRunner)
    run_ppo(config, task_runner_class=task_runner_class)


@hydra.main(config_path="config", config_name="priorl_ppo_trainer", version_base=None)
def main(config) -> None:
    """Hydra entry point: verl's arguments plus ``priorl.*``."""
    try:
        options = check_config(config)
    except ValueError as exc:
        print(f"priorl: error: {exc}", file=sys.stderr)
        sys.exit(2)
    if options.sampler is None and options.replay is None:
        print(
            "priorl: note: priorl.replay.enable=false and priorl.sampler.enable=false: this runs verl's own "
            "RayPPOTrainer with nothing of priorl's (priorl.replay.enable=true adds replay, "
            "priorl.sampler.enable=true the prioritized sampler)",
            file=sys.stderr,
        )
    run(config)


if __name__ == "__main__":
    main()
