"""Lazy chunks of problem ids from a priorl sampler, for engines that pull indices through a DataLoader.

An engine's DataLoader asks its sampler for indices one at a time and may ask ahead of training (TRL's
accelerate loader fetches one batch ahead; a DataLoader with workers prefetches more). :class:`ChunkFeed`
draws each chunk from the priorl sampler only when the loader reaches it, so every chunk is chosen from
the priorities known at that moment, and remembers the chunks handed out whose rewards have not come back
(``pending``). Its state saves them; after a resume they are handed out again first, so no drawn problem
is lost between a checkpoint and the rewards that would have scored it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

STATE_VERSION = 1


class ChunkFeed:
    """Hand out chunks of ``chunk_size`` problem ids drawn lazily from ``sampler``.

    Args:
        sampler: any priorl sampler (``sample``, ``observe``, ``state_dict``, ``load_state_dict``,
            ``metrics``), e.g. :class:`priorl.sampling.PrioritizedSampler`.
        chunk_size: distinct problems per chunk (one generation batch's prompts).
    """

    def __init__(self, sampler, chunk_size: int) -> None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
        self.sampler = sampler
        self.chunk_size = chunk_size
        self._pending: deque[list[int]] = deque()  # handed out, rewards not yet observed, oldest first
        self._redo: deque[list[int]] = deque()  # pending at the last checkpoint: handed out again first

    def next_chunk(self) -> list[int]:
        """The next chunk: a re-issued one after a resume, else a fresh ``sampler.sample(chunk_size)``."""
        chunk = self._redo.popleft() if self._redo else [int(i) for i in self.sampler.sample(self.chunk_size)]
        self._pending.append(chunk)
        return chunk

    def observe(self, problem_ids: Sequence[int], rewards: Sequence[Sequence[float]]) -> None:
        """Pass one reward group per problem to the sampler and retire the chunk they came from."""
        ids = [int(i) for i in problem_ids]
        self.sampler.observe(ids, rewards)
        seen = set(ids)
        for chunk in self._pending:  # the oldest chunk these groups belong to
            if seen <= set(chunk):
                self._pending.remove(chunk)
                break

    def retire_all(self) -> None:
        """Forget every pending chunk (the engine consumed them all, scored or filtered out)."""
        self._pending.clear()

    @property
    def pending(self) -> list[list[int]]:
        """Chunks handed out whose rewards have not been observed, oldest first."""
        return [list(c) for c in self._pending]

    def state_dict(self) -> dict:
        """The sampler's state plus the pending chunks (JSON-able lists)."""
        return {
            "version": STATE_VERSION,
            "chunk_size": self.chunk_size,
            "pending": [list(c) for c in self._redo] + [list(c) for c in self._pending],
            "sampler": self.sampler.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore; the chunks pending at save time are handed out again before any new draw."""
        missing = [k for k in ("chunk_size", "pending", "sampler") if k not in state]
        if missing:
            raise ValueError(f"feed state is missing keys: {missing}")
        if int(state["chunk_size"]) != self.chunk_size:
            raise ValueError(
                f"feed state was saved with chunks of {state['chunk_size']} problems, this run uses {self.chunk_size}; "
                "the generation batch size (prompts per generation) must not change across a resume"
            )
        self.sampler.load_state_dict(state["sampler"])
        self._redo = deque([int(i) for i in c] for c in state["pending"])
        self._pending = deque()
