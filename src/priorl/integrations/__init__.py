"""priorl inside the engines people scale with.

- :mod:`priorl.integrations.trl`: :class:`~priorl.integrations.trl.PriorlGRPOTrainer`, a
  ``trl.GRPOTrainer`` whose prompts come from a priorl sampler (extra ``priorl[trl]``).
- :mod:`priorl.integrations.verl`: ``python -m priorl.integrations.verl.main_ppo``, verl's PPO trainer with a
  priorl sampler and advantage-prioritized rollout replay inside the PPO step (verl 0.7.x and 0.9.x), and
  :class:`~priorl.integrations.verl.PriorlCurriculumSampler` for verl 0.7's curriculum hook (extra
  ``priorl[verl]``).

Both share :class:`~priorl.integrations.feed.ChunkFeed`, which draws problem chunks lazily and keeps track
of the ones handed out but not yet scored, so a resumed run re-issues them instead of losing them.
Importing this package imports neither TRL nor verl.
"""
