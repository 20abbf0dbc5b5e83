"""Which pool each problem is in, from its latest estimates, with O(k) bookkeeping per update.

- ``unseen``: no rewards observed yet;
- ``active``: estimated reward variance above ``min_priority`` (it has gradient to give);
- ``solved`` / ``unsolved``: variance at or below ``min_priority`` with estimated success >= 0.5 / < 0.5.
  With binary rewards and the last-group estimator these are "every rollout succeeded" and "every
  rollout failed".

A *forgetting* is a solved problem observed again and no longer solved; a *breakthrough* is an unsolved
problem observed again and no longer unsolved.
"""

from __future__ import annotations

import numpy as np

UNSEEN, ACTIVE, SOLVED, UNSOLVED = 0, 1, 2, 3
POOL_NAMES = ("unseen", "active", "solved", "unsolved")


class Pools:
    """Per-problem pool membership (an int8 array) and the size of every pool, kept up to date."""

    def __init__(self, num_problems: int, min_priority: float = 0.0) -> None:
        if min_priority < 0:
            raise ValueError(f"min_priority must be >= 0, got {min_priority}")
        self.min_priority = float(min_priority)
        self.status = np.full(num_problems, UNSEEN, dtype=np.int8)
        self.counts = np.array([num_problems, 0, 0, 0], dtype=np.int64)
        self.forgetting_total = 0
        self.breakthroughs_total = 0
        self.last_forgetting = 0
        self.last_breakthroughs = 0

    def update(self, ids: np.ndarray, p: np.ndarray, priority: np.ndarray) -> np.ndarray:
        """Re-classify distinct ``ids`` from success estimate and priority; returns their status. O(k)."""
        new = np.where(priority > self.min_priority, ACTIVE, np.where(p >= 0.5, SOLVED, UNSOLVED)).astype(np.int8)
        old = self.status[ids]
        self.last_forgetting = int(np.count_nonzero((old == SOLVED) & (new != SOLVED)))
        self.last_breakthroughs = int(np.count_nonzero((old == UNSOLVED) & (new != UNSOLVED)))
        self.forgetting_total += self.last_forgetting
        self.breakthroughs_total += self.last_breakthroughs
        self.counts -= np.bincount(old, minlength=4)
        self.counts += np.bincount(new, minlength=4)
        self.status[ids] = new
        return new

    def metrics(self) -> dict:
        """Pool sizes and the forgetting / breakthrough counts (last update and total)."""
        out = {name: int(n) for name, n in zip(POOL_NAMES, self.counts, strict=True)}
        out.update(
            forgetting=self.last_forgetting,
            breakthroughs=self.last_breakthroughs,
            forgetting_total=self.forgetting_total,
            breakthroughs_total=self.breakthroughs_total,
        )
        return out

    def state_dict(self) -> dict:
        return {
            "status": self.status.copy(),
            "forgetting_total": self.forgetting_total,
            "breakthroughs_total": self.breakthroughs_total,
            "last_forgetting": self.last_forgetting,
            "last_breakthroughs": self.last_breakthroughs,
        }

    def load_state_dict(self, state: dict) -> None:
        status = np.asarray(state["status"], dtype=np.int8)
        if status.shape != self.status.shape:
            raise ValueError(f"pool state has {status.size} problems, this sampler has {self.status.size}")
        if status.size and (status.min() < UNSEEN or status.max() > UNSOLVED):
            raise ValueError(f"pool state holds an unknown status code {int(status.max())}")
        self.status = status.copy()
        self.counts = np.bincount(self.status, minlength=4).astype(np.int64)
        self.forgetting_total = int(state["forgetting_total"])
        self.breakthroughs_total = int(state["breakthroughs_total"])
        self.last_forgetting = int(state["last_forgetting"])
        self.last_breakthroughs = int(state["last_breakthroughs"])
