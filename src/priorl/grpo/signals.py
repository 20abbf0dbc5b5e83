"""SIGINT and SIGTERM as a request to stop cleanly, in one place.

The trainer installs :class:`StopSignals` for the length of :meth:`~priorl.grpo.trainer.Trainer.train`. A first
signal records the stop; if it arrives inside an :meth:`StopSignals.abortable` block (a step's generation and
scoring, or an evaluation), it raises :class:`AbortStep` there, so that work is dropped; elsewhere the work in
flight completes and the trainer stops at its next check. A second signal raises ``KeyboardInterrupt`` at once.
The trainer then writes a checkpoint of the last completed step and raises :class:`TrainingInterrupted`.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from pathlib import Path


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped training after a checkpoint of the last completed step was written.

    A ``KeyboardInterrupt``, so that code catching ``Exception`` (e.g. ``priorl compare`` going on past a
    failed run) lets it through. ``checkpoint`` is None when no step had completed (a resume starts over).
    """

    def __init__(self, signum: int, step: int, checkpoint: Path | None) -> None:
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        name = signal.Signals(signum).name
        where = f"saved {checkpoint}" if checkpoint is not None else "no step had completed, nothing to save"
        super().__init__(f"{name} at step {step}: {where}")

    @property
    def exit_code(self) -> int:
        """The shell's convention for death by signal: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum


class AbortStep(BaseException):
    """Raised by the signal handler inside an abortable block: that work is dropped (a BaseException, so no
    library's ``except Exception`` swallows it)."""


class StopSignals:
    """Records the first SIGINT / SIGTERM (``signum``) and aborts the abortable work in flight."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._abortable = False

    @contextmanager
    def handling(self, enabled: bool = True):
        """Install the handlers for the block (main thread only; elsewhere, or when not ``enabled``, nothing is
        installed), forgetting any earlier stop; the previous handlers come back afterwards."""
        self.signum, self._abortable = None, False
        previous = {}
        if enabled and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, self._on_signal)
        try:
            yield self
        finally:
            self._abortable = False
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    @contextmanager
    def abortable(self):
        """A block that a signal drops by raising :class:`AbortStep` inside it (until :meth:`commit`)."""
        self._abortable = True
        try:
            yield
        finally:
            self._abortable = False

    def commit(self) -> None:
        """From here on the abortable block's work completes: a signal only records the stop."""
        self._abortable = False

    def _on_signal(self, signum: int, frame) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt  # the second one: stop at once, saving nothing more
        self.signum = signum
        # os.write, not print: a signal handler may run in the middle of another write to the same stream.
        os.write(
            2,
            f"\n{signal.Signals(signum).name}: stopping after a checkpoint of the last completed step "
            "(send it again to quit at once, without saving)\n".encode(),
        )
        if self._abortable:
            raise AbortStep
