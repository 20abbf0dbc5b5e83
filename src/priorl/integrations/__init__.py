"""priorl inside the engines people scale with.

- :mod:`priorl.integrations.trl`: :class:`~priorl.integrations.trl.PrioritizedGRPOTrainer`, a
  ``trl.GRPOTrainer`` whose prompts come from a priorl sampler (extra ``priorl[trl]``).
- :mod:`priorl.integrations.verl`: :class:`~priorl.integrations.verl.PrioritizedCurriculumSampler`, a verl
  curriculum sampler (extra ``priorl[verl]``).

Both share :class:`~priorl.integrations.feed.ChunkFeed`, which draws problem chunks lazily and keeps track
of the ones handed out but not yet scored, so a resumed run re-issues them instead of losing them.
Importing this package imports neither TRL nor verl.
"""
