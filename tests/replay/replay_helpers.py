"""Small builders shared by the replay tests."""

from __future__ import annotations

import numpy as np

from priorl.types import Rollout


def rollout(advantage: float = 0.5, step: int = 0, problem_id: int = 0, reward: float = 1.0, **kw) -> Rollout:
    """A valid rollout with tiny token lists; any field can be overridden."""
    fields = {
        "problem_id": problem_id,
        "prompt_ids": [1, 2, 3],
        "completion_ids": [4, 5],
        "behavior_logprobs": [-0.25, -1.5],
        "reward": reward,
        "advantage": advantage,
        "step": step,
    }
    fields.update(kw)
    return Rollout(**fields)


def batch(advantages, step: int, start_id: int = 0) -> list[Rollout]:
    """One rollout per advantage, all born at ``step``, problem ids from ``start_id``."""
    return [rollout(a, step, start_id + i) for i, a in enumerate(advantages)]


def key(r: Rollout) -> tuple:
    """Identity of a rollout across a state round trip (loaded rollouts are new objects)."""
    return (
        r.problem_id,
        r.step,
        r.advantage,
        r.reward,
        r.times_replayed,
        np.asarray(r.prompt_ids).tolist(),
        np.asarray(r.completion_ids).tolist(),
        np.asarray(r.behavior_logprobs, dtype=np.float64).tolist(),
    )
