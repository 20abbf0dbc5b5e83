"""What a run shows while it trains: a live bar on a terminal, plain lines in a log.

:class:`Reporter` receives the trainer's events (steps, evaluations, warnings); the base class prints
nothing and sends warnings to the ``priorl`` logger, which is what a library caller gets. The command
line picks :class:`RichReporter` when stdout is a terminal and :class:`PlainReporter` otherwise (a log
file, CI, nohup), so a long run is never silent.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

logger = logging.getLogger("priorl")


def format_duration(seconds: float) -> str:
    """``45s``, ``3m17s``, ``2h05m``."""
    if not math.isfinite(seconds):
        return "?"
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def eval_summary(result: dict) -> str:
    """``pass@1 47.2%, avg@4 40.1%`` for an evaluation result."""
    text = f"pass@1 {result['accuracy']:.1%}"
    if "sampled" in result:
        text += f", avg@{result['sampled']['samples']} {result['sampled']['accuracy']:.1%}"
    return text


class Reporter:
    """A run's events. The base class shows nothing; warnings go to the ``priorl`` logger."""

    def start(self, trainer) -> None:
        """Training starts (or resumes) at ``trainer.step``."""

    def step(self, step: int, metrics: dict) -> None:
        """A training step finished and its metrics were logged."""

    def eval_start(self, step: int, total: int) -> None:
        """An evaluation of ``total`` generation units (problems x passes) starts."""

    def eval_advance(self, done: int) -> None:
        """``done`` of the evaluation's units are generated."""

    def eval_end(self, step: int, result: dict, seconds: float) -> None:
        """The evaluation finished."""

    def warn(self, message: str) -> None:
        """Something the user should know while the run goes on (e.g. a failing verifier)."""
        logger.warning(message)

    def end(self) -> None:
        """Training stopped (finished, interrupted or failed)."""


class CallbackReporter(Reporter):
    """Adapts a plain ``progress(step, metrics)`` function (what ``Trainer.train`` used to take)."""

    def __init__(self, fn: Callable[[int, dict], None]) -> None:
        self.fn = fn

    def step(self, step: int, metrics: dict) -> None:
        self.fn(step, metrics)


def as_reporter(progress) -> Reporter:
    """``None`` -> a silent :class:`Reporter`; a function -> :class:`CallbackReporter`; a Reporter as is."""
    if progress is None:
        return Reporter()
    if isinstance(progress, Reporter):
        return progress
    return CallbackReporter(progress)


class RunClock:
    """Seconds per step and the time left, from the steps this session has run (evaluations included)."""

    def __init__(self, total_steps: int, max_rollouts: int | None) -> None:
        self.total_steps = total_steps
        self.max_rollouts = max_rollouts
        self.t0: float | None = None  # when the session's first step started
        self.first_step = 0
        self.t_first = 0.0  # when the first step was reported, and the completions made by then
        self.rollouts_first = 0
        self.steps = 0
        self.rollouts = 0
        self.now = 0.0

    def update(self, step: int, metrics: dict) -> None:
        now = time.monotonic()
        if self.t0 is None:
            self.t0 = now - float(metrics.get("time/step", 0.0))
            self.first_step = step - 1
            self.t_first, self.rollouts_first = now, int(metrics["rollouts_generated"])
        self.steps, self.rollouts, self.now = step, int(metrics["rollouts_generated"]), now

    @property
    def seconds_per_step(self) -> float:
        done = self.steps - self.first_step
        return (self.now - self.t0) / done if self.t0 is not None and done > 0 else math.nan

    @property
    def eta(self) -> float:
        """Seconds left until the step limit or the generation budget, whichever comes first."""
        left = (self.total_steps - self.steps) * self.seconds_per_step
        made = self.rollouts - self.rollouts_first
        if self.max_rollouts is not None and made > 0 and self.now > self.t_first:
            left = min(left, (self.max_rollouts - self.rollouts) * (self.now - self.t_first) / made)
        return max(0.0, left) if math.isfinite(left) else math.nan


def progress_line(step: int, total: int, metrics: dict, clock: RunClock) -> str:
    """One plain progress line: step, completions, reward, informative fraction, replayed, loss, speed, ETA."""
    parts = [
        f"step {step}/{total}",
        f"{int(metrics['rollouts_generated']):,} completions",
        f"reward {metrics['reward_mean']:.3f}",
        f"informative {metrics['informative_fraction']:.0%}",
        f"replayed {metrics['n_replayed']}",
        f"loss {metrics['loss']:+.4f}",
    ]
    bad = int(metrics.get("verifier_errors", 0)) + int(metrics.get("verifier_timeouts", 0))
    if bad:
        parts.append(f"verifier failures {bad}")
    parts += [f"{clock.seconds_per_step:.2f} s/step", f"ETA {format_duration(clock.eta)}"]
    return "  ".join(parts)


class WarningsOnly(Reporter):
    """Shows nothing but warnings, on ``console`` (``logging.progress: false``)."""

    def __init__(self, console) -> None:
        self.console = console

    def warn(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)


class PlainReporter(Reporter):
    """Plain lines for logs: a progress line at the first and last step and at least ``every_s`` apart
    (0: every step), one line per evaluation, warnings on ``err``."""

    def __init__(self, console, *, every_s: float = 30.0, err_console=None) -> None:
        self.console = console
        self.err = err_console or console
        self.every_s = every_s
        self.last_line = -math.inf
        self.clock: RunClock | None = None
        self.total = 0

    def start(self, trainer) -> None:
        self.total = trainer.expected_steps()
        self.clock = RunClock(self.total, trainer.config.train.max_rollouts)

    def step(self, step: int, metrics: dict) -> None:
        self.clock.update(step, metrics)
        now = time.monotonic()
        last = step >= self.total
        if now - self.last_line >= self.every_s or last or step == self.clock.first_step + 1:
            self.console.print(progress_line(step, self.total, metrics, self.clock), highlight=False, soft_wrap=True)
            self.last_line = now

    def eval_start(self, step: int, total: int) -> None:
        when = "before training" if step == 0 else f"at step {step}"
        self.console.print(f"evaluating held-out problems {when} ...", highlight=False)

    def eval_end(self, step: int, result: dict, seconds: float) -> None:
        self.console.print(
            f"held-out at step {step}: {eval_summary(result)} on {result['num_problems']:,} problems "
            f"({format_duration(seconds)})",
            highlight=False,
        )

    def warn(self, message: str) -> None:
        self.err.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)


class RichReporter(Reporter):
    """A live bar with the time left, the last step's figures, and a second bar while evaluating."""

    def __init__(self, console) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"), console=console,
        )  # fmt: skip
        self.train_task = None
        self.eval_task = None

    def start(self, trainer) -> None:
        self.progress.start()
        self.train_task = self.progress.add_task(
            "train", total=trainer.expected_steps(), completed=trainer.step, info=""
        )

    def step(self, step: int, metrics: dict) -> None:
        info = (
            f"{int(metrics['rollouts_generated']):,} completions  reward {metrics['reward_mean']:.2f}  "
            f"informative {metrics['informative_fraction']:.0%}  replayed {metrics['n_replayed']}  "
            f"loss {metrics['loss']:+.3f}"
        )
        self.progress.update(self.train_task, completed=step, info=info)

    def eval_start(self, step: int, total: int) -> None:
        label = "eval (before)" if step == 0 else f"eval @ {step}"
        self.eval_task = self.progress.add_task(label, total=total, info="")
        self.progress.refresh()  # show it now: a short evaluation could end before the next timed refresh

    def eval_advance(self, done: int) -> None:
        if self.eval_task is not None:
            self.progress.update(self.eval_task, completed=done)

    def eval_end(self, step: int, result: dict, seconds: float) -> None:
        if self.eval_task is not None:
            self.progress.remove_task(self.eval_task)
            self.eval_task = None
        when = "before training" if step == 0 else f"at step {step}"
        self.progress.console.print(f"held-out {when}: {eval_summary(result)} ({format_duration(seconds)})")

    def warn(self, message: str) -> None:
        self.progress.console.print(f"[yellow]warning:[/] {message}", highlight=False)

    def end(self) -> None:
        self.progress.stop()
