"""The GRPO baseline: problems in shuffled epochs, every problem once per epoch, no priorities."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from priorl.sampling.estimators import LastGroup
from priorl.sampling.passes import ShuffledPass
from priorl.sampling.pools import Pools
from priorl.sampling.undo import Undoable
from priorl.sampling.validation import check_batch_size, check_num_problems

STATE_VERSION = 1


class UniformSampler(Undoable):
    """Uniform sampling without replacement within epochs (what TRL's and verl's shuffled loaders do).

    Same interface as :class:`~priorl.PrioritizedSampler`. ``observe`` changes no choice; it only keeps
    the same pool and informativeness metrics so the two can be compared side by side. A batch that
    straddles two epochs never repeats a problem: an id already in the batch swaps places with the next
    one in the new epoch's order that is not, so it comes a little later in that epoch.

    ``sample(B)`` costs O(B) amortized (one O(M) shuffle per epoch, i.e. per M/B calls). ``undo_mark`` /
    ``undo_to`` undo the latest calls (:mod:`priorl.sampling.undo`).
    """

    def __init__(self, num_problems: int, *, seed: int = 0) -> None:
        check_num_problems(num_problems)
        self.num_problems = int(num_problems)
        self.seed = int(seed)
        self._rng = np.random.default_rng(self.seed)
        self._pass = ShuffledPass(self.num_problems, self._rng)
        self._calls = 0
        self._pools = Pools(self.num_problems)
        self._estimator = LastGroup(self.num_problems)
        self._informative = 0.0

    def sample(self, batch_size: int) -> list[int]:
        """Return ``batch_size`` distinct ids: the next ones in this epoch's shuffled order."""
        B = check_batch_size(batch_size, self.num_problems)
        self._calls += 1
        out = self._pass.take(B)
        self._undo_log("sample", (B,), B)
        return out

    def observe(self, problem_ids: Sequence[int], rewards: Sequence[Sequence[float]]) -> None:
        """Validate and record one group of rewards per problem (for metrics only).

        Same checks as the prioritized sampler: a single number per problem instead of a group raises.
        """
        self._observe_logged(problem_ids, rewards)

    def _undo_replay_observe(self, ids, m1, m2, var, size) -> None:
        if ids.size == 0:
            return
        # Pools.update needs distinct ids: fold repeated problems one group at a time, in order.
        parts = [slice(None)] if len(set(ids.tolist())) == ids.size else [slice(i, i + 1) for i in range(ids.size)]
        for sl in parts:
            p, priority = self._estimator.update(ids[sl], m1[sl], m2[sl], size[sl])
            self._pools.update(ids[sl], p, priority)
        self._informative = float(np.count_nonzero(var > 0.0)) / ids.size

    def metrics(self) -> dict:
        """Pools by each problem's last group, forgetting / breakthroughs, informative fraction, epoch."""
        out = self._pools.metrics()
        out.update(informative_fraction=self._informative, epoch=self._pass.epoch, calls=self._calls)
        return out

    def state_dict(self) -> dict:
        """Numpy arrays and JSON-able values, RNG included."""
        return {
            "version": STATE_VERSION,
            "kind": "UniformSampler",
            "num_problems": self.num_problems,
            "rng": self._rng.bit_generator.state,
            **self._pass.state_dict(),
            "calls": self._calls,
            "pools": self._pools.state_dict(),
            "informative_fraction": self._informative,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore from :meth:`state_dict`; raises ValueError for a state of another size."""
        missing = [k for k in ("num_problems", "rng", "order", "pos", "epoch", "calls", "pools") if k not in state]
        if missing:
            raise ValueError(f"sampler state is missing keys: {missing}")
        if int(state["num_problems"]) != self.num_problems:
            raise ValueError(
                f"sampler state is for {state['num_problems']} problems, this sampler has {self.num_problems}"
            )
        self._pass.load_state_dict(state)
        self._pools.load_state_dict(state["pools"])
        self._rng.bit_generator.state = state["rng"]
        self._calls = int(state["calls"])
        self._informative = float(state.get("informative_fraction", 0.0))
        self._undo_forget()
