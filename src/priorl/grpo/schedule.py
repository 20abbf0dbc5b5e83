"""When a run evaluates held-out accuracy and when it writes a checkpoint (the ``eval`` and ``checkpoint`` keys).

Neither changes what training does: evaluation runs on its own random stream and a checkpoint only reads state.
"""

from __future__ import annotations

from pathlib import Path

from priorl.config import RunConfig
from priorl.grpo.summary import read_jsonl


class Schedule:
    """The evaluation and checkpoint schedule of ``config``.

    Evaluations during training come every ``eval.every`` steps and/or every ``eval.every_rollouts`` generated
    completions; when both are 0, ``eval.during`` of them are spread evenly over ``train.max_steps`` (or the
    ``train.max_rollouts`` budget): at ``k * total // (during + 1)`` for ``k = 1 .. during``, those strictly
    inside the run and distinct, so a run shorter than ``during + 2`` steps gets fewer, never more.
    Checkpoints come every ``checkpoint.every`` steps and whenever ``checkpoint.every_minutes`` have passed
    since the last one.
    """

    def __init__(self, config: RunConfig) -> None:
        e, t = config.eval, config.train
        self.eval_every_steps, self.eval_every_rollouts = e.every, e.every_rollouts
        # The spread-out points: steps, or completion counts to cross (with a budget).
        self.eval_steps: set[int] = set()
        self.eval_rollouts: list[int] = []
        if not (e.every or e.every_rollouts) and e.during:
            total = t.max_rollouts if t.max_rollouts is not None else t.max_steps
            points = sorted({k * total // (e.during + 1) for k in range(1, e.during + 1)} - {0, total})
            if t.max_rollouts is not None:
                self.eval_rollouts = points
            else:
                self.eval_steps = set(points)
        self.checkpoint_every = config.checkpoint.every
        self.checkpoint_every_s = (
            None if config.checkpoint.every_minutes is None else 60 * config.checkpoint.every_minutes
        )

    def eval_due(self, step: int, generated_before: int, generated_now: int) -> bool:
        """Whether the step that took the completion count from ``generated_before`` to ``generated_now`` ends
        with an evaluation (by its step number, or by crossing a multiple of ``eval.every_rollouts`` or one of
        the spread-out points)."""
        by_step = (bool(self.eval_every_steps) and step % self.eval_every_steps == 0) or step in self.eval_steps
        k = self.eval_every_rollouts
        by_budget = bool(k) and generated_now // k > generated_before // k
        by_budget = by_budget or any(generated_before < p <= generated_now for p in self.eval_rollouts)
        return by_step or by_budget

    def checkpoint_due(self, step: int, seconds_since_save: float) -> bool:
        """Whether a checkpoint is due after ``step``, ``seconds_since_save`` after the last one."""
        by_step = bool(self.checkpoint_every) and step % self.checkpoint_every == 0
        by_time = self.checkpoint_every_s is not None and seconds_since_save >= self.checkpoint_every_s
        return by_step or by_time


def evaluated_at(run_dir: str | Path, step: int) -> bool:
    """Whether the run's eval.jsonl holds an evaluation of ``step``."""
    return any(e.get("step") == step for e in read_jsonl(Path(run_dir) / "eval.jsonl"))
