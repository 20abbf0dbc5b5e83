"""priorl inside verl (extra ``priorl[verl]``; tested against verl 0.7.1 and 0.9.1).

- :mod:`priorl.integrations.verl.main_ppo`: ``python -m priorl.integrations.verl.main_ppo ...`` stands in
  for ``python -m verl.trainer.main_ppo``: verl's own arguments plus ``priorl.*``. It runs verl's PPO
  trainer with priorl's problem sampler and, optionally, advantage-prioritized rollout replay inside the
  PPO step (:mod:`priorl.integrations.verl.trainer`, :mod:`priorl.integrations.verl.replay`).
- :class:`PriorlCurriculumSampler`: the problem sampler alone, for verl 0.5 - 0.7.x's own
  ``main_ppo`` (``data.sampler.class_path=pkg://priorl.integrations.verl``); see
  :mod:`priorl.integrations.verl.sampler`.

Importing this package imports verl's sampler interface only (no Ray, no hydra). docs/scale.md has the
complete commands, what is tested here and what is not.
"""

from priorl.integrations.verl.sampler import PriorlCurriculumSampler, PriorlProblemSampler

__all__ = ["PriorlCurriculumSampler", "PriorlProblemSampler"]
