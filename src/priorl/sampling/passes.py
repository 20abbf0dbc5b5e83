"""Shuffled passes over the data without replacement: what TRL's and verl's epoch loaders do.

Shared by :class:`~priorl.UniformSampler` (which takes the next ``B`` ids of the pass) and
:class:`~priorl.PrioritizedPassSampler` (which takes the next ``C`` ids as candidates and selects ``B`` of them).
"""

from __future__ import annotations

import numpy as np


class ShuffledPass:
    """The ids ``0 .. M-1`` in a seeded shuffled order, reshuffled when a pass is used up.

    ``take(n)`` returns the next ``n`` distinct ids. A request that straddles two passes never repeats an id:
    an id already taken swaps places with the next one in the new pass's order that is not, so it comes a
    little later in that pass. Every id appears exactly once per pass. O(n) amortized (one O(M) shuffle per
    pass). The ``rng`` is shared with the owner, whose state dict saves it.
    """

    def __init__(self, num_problems: int, rng: np.random.Generator) -> None:
        self.num_problems = int(num_problems)
        self._rng = rng
        self.order = rng.permutation(self.num_problems)
        self.pos = 0
        self.epoch = 0  # completed passes before the current one

    def take(self, n: int, exclude: frozenset[int] | set[int] = frozenset()) -> list[int]:
        """The next ``n`` distinct ids of the pass, none in ``exclude``. O(n + len(exclude)) amortized.

        Ids in ``exclude`` (ones the caller already holds for this batch, e.g. retests) are passed over where
        the pass reaches them: they count as this pass's visit. Requires ``n + len(exclude) <= M``.
        """
        out: list[int] = []
        taken: set[int] = set()  # ids of this call, possibly from the end of the previous pass
        M = self.num_problems
        while len(out) < n:
            if self.pos == M:
                self.order = self._rng.permutation(M)
                self.pos = 0
                self.epoch += 1
            pid = int(self.order[self.pos])
            if pid in exclude:
                self.pos += 1
                continue
            if pid in taken:
                # Straddling a pass boundary: swap this id with the next one not taken.
                j = self.pos + 1
                while int(self.order[j]) in taken:
                    j += 1
                self.order[[self.pos, j]] = self.order[[j, self.pos]]
                pid = int(self.order[self.pos])
                if pid in exclude:
                    self.pos += 1
                    continue
            self.pos += 1
            out.append(pid)
            taken.add(pid)
        return out

    def state_dict(self) -> dict:
        return {"order": self.order.copy(), "pos": self.pos, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        order = np.asarray(state["order"], dtype=np.int64)
        if order.shape != (self.num_problems,):
            raise ValueError(f"sampler state field 'order' has shape {order.shape}, expected ({self.num_problems},)")
        self.order = order.copy()
        self.pos, self.epoch = int(state["pos"]), int(state["epoch"])
