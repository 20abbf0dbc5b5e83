"""Undoing a sampler's latest calls without an O(M) snapshot per step: a redo log from a base state.

The trainer may have to drop a step that already called ``sample`` and ``observe`` (DAPO dynamic sampling
draws and observes between its rounds, inside the part of a step that a signal drops), and must then put the
sampler back exactly as it was. A ``state_dict()`` before every step does that at O(M) a step. The optional
methods here do it at O(B) a step:

- :meth:`Undoable.undo_mark` returns a mark of the current state. The first call saves one base
  ``state_dict()``; from then on every ``sample`` and ``observe`` is appended to a log (the batch size; the
  validated ids and reward moments, O(k) for k groups). When the log holds ``rebase_after`` problems, the next
  mark saves a new base and empties the log, so the O(M) base costs O(B) amortized per step, like the
  per-pass shuffle of a sampler.
- :meth:`Undoable.undo_to` loads the base and replays the logged calls made before the mark (O(M) plus the
  replayed calls, once, when a step is dropped). The samplers are deterministic given their state (their
  RNG is part of it: what resuming from a checkpoint relies on), so the replay ends in exactly the state of
  the mark, whatever a call cut short after the mark had half changed.

``load_state_dict`` forgets the log (earlier marks then raise). Once marked, a sampler keeps logging until its
next mark (which rebases a long log) or ``load_state_dict``: a caller marks every step, as the trainer does.
A sampler of one's own needs neither method: for a sampler without them the trainer falls back to
``state_dict()`` / ``load_state_dict()``.
"""

from __future__ import annotations

from collections.abc import Sequence

from priorl.sampling.validation import group_moments

_MIN_REBASE = 4096


class Undoable:
    """Mixin for the samplers: :meth:`undo_mark` / :meth:`undo_to` (see the module docstring).

    A subclass calls :meth:`_undo_log` after each completed ``sample`` with its batch size, implements ``observe``
    as :meth:`_observe_logged` and the state change of one validated observation as ``_undo_replay_observe``, and
    calls :meth:`_undo_forget` in ``load_state_dict``.
    """

    _undo_base: dict | None = None
    _undo_calls: list | tuple = ()  # a list of its own from the first mark on
    _undo_count = 0  # problems in the log (ids sampled plus groups observed)
    _undo_epoch = 0  # bumped at each new base, so a mark from before it is recognised
    _undo_replaying = False

    @property
    def rebase_after(self) -> int:
        """Problems logged after which the next mark saves a new base: ``max(4096, M // 2)``."""
        return max(_MIN_REBASE, int(self.num_problems) // 2)

    def undo_mark(self) -> tuple[int, int]:
        """A mark of the current state for :meth:`undo_to`. O(1), plus one ``state_dict()`` at the first
        call and whenever ``rebase_after`` problems have been logged since the last (O(B) amortized a step)."""
        if self._undo_base is None or self._undo_count >= self.rebase_after:
            self._undo_base = self.state_dict()
            self._undo_calls, self._undo_count = [], 0
            self._undo_epoch += 1
        return (self._undo_epoch, len(self._undo_calls))

    def undo_to(self, mark: tuple[int, int]) -> None:
        """Put the sampler back exactly as it was at ``mark`` (from :meth:`undo_mark`), dropping every call
        since, a call cut short by an exception included. Raises ValueError for a mark from before the last
        ``load_state_dict`` or the last new base (the trainer only undoes to its latest mark)."""
        epoch, n = mark
        if self._undo_base is None or epoch != self._undo_epoch or not 0 <= n <= len(self._undo_calls):
            raise ValueError(f"undo mark {mark} is not from this sampler's current undo log")
        calls = self._undo_calls[:n]
        self._undo_replaying = True
        try:
            self.load_state_dict(self._undo_base)
            for name, args, _ in calls:
                getattr(self, f"_undo_replay_{name}")(*args)
        finally:
            self._undo_replaying = False
        self._undo_calls = calls
        self._undo_count = sum(size for _, _, size in calls)

    # ------------------------------------------------------------------ for the subclasses
    def _observe_logged(self, problem_ids: Sequence[int], rewards: Sequence[Sequence[float]]) -> None:
        """``observe``: validate every group first (nothing changes on bad input), apply, log for a replay."""
        moments = group_moments(problem_ids, rewards, self.num_problems)
        self._undo_replay_observe(*moments)
        self._undo_log("observe", moments, moments[0].size)

    def _undo_replay_sample(self, batch_size: int) -> None:
        self.sample(batch_size)

    def _undo_log(self, name: str, args: tuple, size: int) -> None:
        if self._undo_base is None or self._undo_replaying:
            return
        self._undo_calls.append((name, args, size))
        self._undo_count += size

    def _undo_forget(self) -> None:
        if self._undo_replaying:
            return
        self._undo_base, self._undo_calls, self._undo_count = None, [], 0
        self._undo_epoch += 1
