"""Where the generation budget went: visits per problem and budget share per level, for any sampler.

A sampler that concentrates (a few problems repeated many times while others wait) shows it here first:
``max_visits`` and ``p99_visits`` against uniform sampling's ``ceil(T B / M)``. Kept as a histogram of visit
counts, so a step costs O(B) and reading the percentiles O(max visits), never O(M).
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Sequence
from pathlib import Path

import numpy as np


class Coverage:
    """Visit counts of ``num_problems`` problems, with optional level labels (one per problem)."""

    def __init__(self, num_problems: int, levels: Sequence[Hashable] | None = None) -> None:
        self.num_problems = int(num_problems)
        self._visits = np.zeros(self.num_problems, dtype=np.int64)
        self._hist = [self.num_problems]  # _hist[n]: problems visited exactly n times
        labels = list(levels) if levels is not None else [None] * self.num_problems
        if len(labels) != self.num_problems:
            raise ValueError(f"levels has {len(labels)} labels, expected one per problem ({self.num_problems})")
        names = sorted({str(x) for x in labels if x is not None})
        self._level_names = names
        index = {n: i for i, n in enumerate(names)}
        self._level = np.array([index[str(x)] if x is not None else -1 for x in labels], dtype=np.int64)
        self._per_level = np.zeros(len(names), dtype=np.int64)
        self._total = 0

    def observe(self, problem_ids: Sequence[int]) -> None:
        """Count one visit (one generated group) per id. O(k)."""
        for pid in problem_ids:
            n = int(self._visits[pid])
            self._hist[n] -= 1
            if n + 1 == len(self._hist):
                self._hist.append(0)
            self._hist[n + 1] += 1
            self._visits[pid] = n + 1
            lvl = self._level[pid]
            if lvl >= 0:
                self._per_level[lvl] += 1
            self._total += 1

    def percentile(self, q: float) -> int:
        """The smallest visit count ``v`` with at least ``q`` percent of problems visited ``<= v`` times."""
        need = q / 100.0 * self.num_problems
        seen = 0
        for n, count in enumerate(self._hist):
            seen += count
            if seen >= need - 1e-9:
                return n
        return len(self._hist) - 1

    def metrics(self) -> dict:
        """``max_visits``, ``p99_visits``, ``never_visited`` and ``share_level_L`` (cumulative budget share)."""
        out = {"max_visits": self._max_visits(), "p99_visits": self.percentile(99), "never_visited": self._hist[0]}
        if self._total:
            for name, n in zip(self._level_names, self._per_level, strict=True):
                out[f"share_level_{name}"] = float(n) / self._total
        return out

    def summary(self) -> dict:
        """Visits per problem over the whole run, for a run's summary: ``draws`` (generated groups),
        ``problems``, ``per_problem`` (draws / problems: what a sampler had to learn each pass rate from),
        ``visited`` (problems drawn at least once), ``mean_per_visited``, ``max`` and ``never_visited``."""
        visited = self.num_problems - self._hist[0]
        return {
            "draws": int(self._total),
            "problems": self.num_problems,
            "per_problem": round(self._total / self.num_problems, 4) if self.num_problems else 0.0,
            "visited": int(visited),
            "mean_per_visited": round(self._total / visited, 4) if visited else 0.0,
            "max": self._max_visits(),
            "never_visited": int(self._hist[0]),
        }

    def _max_visits(self) -> int:
        return max((n for n, c in enumerate(self._hist) if c), default=0)

    def visits(self) -> np.ndarray:
        """Visits per problem (a copy). O(M)."""
        return self._visits.copy()

    def replay_batches(self, path: Path) -> None:
        """Count the groups of every step in a run's ``batches.jsonl`` (rebuilds the counts on resume): every
        generated group, ``generated_ids`` where a step has them (dynamic sampling), else ``problem_ids``."""
        path = Path(path)
        if not path.exists():
            return
        with path.open() as f:
            for line in f:
                if line.strip():
                    row = json.loads(line)
                    self.observe(row.get("generated_ids", row["problem_ids"]))
