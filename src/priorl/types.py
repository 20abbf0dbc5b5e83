"""Typed containers passed between priorl's components.

Token fields accept whatever the caller's generator produces: Python lists of ints, 1-D numpy arrays
or 1-D torch tensors (anything with ``len`` that ``numpy.asarray`` understands). This module imports
no torch, so ``import priorl`` stays numpy-only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Problem", "Rollout", "RolloutGroup", "TokenSeq", "check_rollout"]

# A 1-D sequence of token ids or per-token floats: list, numpy array or torch tensor.
TokenSeq = Sequence[int] | Sequence[float] | Any


@dataclass(frozen=True, slots=True)
class Problem:
    """One training or evaluation problem: a prompt and its gold answer.

    ``id`` is the problem's index in its dataset (0 .. M-1), the id the samplers use; ``level`` is an
    optional difficulty level for per-level reports; ``source`` says where it came from (file and line).
    """

    id: int
    prompt: str
    answer: str
    level: int | None = None
    source: str = ""


# eq=False: a rollout is an event, two rollouts with equal fields are still two rollouts, and
# field-wise equality would be ambiguous for array fields anyway. slots=True: the replay benchmark
# holds 10^6 of them.
@dataclass(eq=False, slots=True)
class Rollout:
    """One completion of one problem, as the replay buffer stores and replays it.

    ``advantage`` is frozen when the rollout is made (from its own fresh group) and never recomputed;
    ``behavior_logprobs`` are the log-probs recorded at generation, used as the denominator of the
    clipped importance ratio when the rollout is replayed later.
    """

    problem_id: int
    prompt_ids: TokenSeq  # [P] prompt token ids
    completion_ids: TokenSeq  # [C] completion token ids
    behavior_logprobs: TokenSeq  # [C] log pi_behavior(token), one per completion token
    reward: float  # verifier reward, usually in [0, 1]
    advantage: float  # group-relative advantage from the rollout's own fresh group
    step: int  # training step the rollout was generated at (its birth step)
    times_replayed: int = 0  # how many times a replay buffer has drawn it


@dataclass(eq=False, slots=True)
class RolloutGroup:
    """The G completions of one problem generated in one step: the unit GRPO's advantages are computed over.

    ``informative`` says whether the rewards differ (only then do the advantages, and the gradient, differ from
    zero); ``rewards`` are the G rewards in the rollouts' order."""

    problem_id: int
    rewards: list[float]
    informative: bool
    rollouts: list[Rollout]


def check_rollout(rollout: Rollout) -> None:
    """Raise ``ValueError`` naming the offending value if ``rollout`` cannot be trained on. O(1).

    Checks: finite reward and advantage, as many behavior log-probs as completion tokens, and a
    non-negative integer step.
    """
    if not isinstance(rollout, Rollout):
        raise ValueError(f"expected a Rollout, got {type(rollout).__name__}")
    reward, advantage, step = rollout.reward, rollout.advantage, rollout.step
    if not math.isfinite(reward):
        raise ValueError(f"rollout of problem {rollout.problem_id} has a non-finite reward: {reward}")
    if not math.isfinite(advantage):
        raise ValueError(f"rollout of problem {rollout.problem_id} has a non-finite advantage: {advantage}")
    n_logprobs, n_tokens = len(rollout.behavior_logprobs), len(rollout.completion_ids)
    if n_logprobs != n_tokens:
        raise ValueError(
            f"rollout of problem {rollout.problem_id} has {n_logprobs} behavior_logprobs for "
            f"{n_tokens} completion_ids (need one per completion token)"
        )
    if isinstance(step, bool) or not isinstance(step, int | np.integer):
        raise ValueError(f"rollout of problem {rollout.problem_id} has a non-integer step: {step!r}")
    if step < 0:
        raise ValueError(f"rollout of problem {rollout.problem_id} has a negative step: {step}")
