"""`priorl bench sampler`: one sampler step at growing M, the registered samplers against two naive ones.

One step = ``sample(B)`` then ``observe`` of B groups of G binary rewards. Every sampler is first
brought to a steady state where all M problems have been observed once (so the heap sampler is past its
unseen phase and the timed steps include its retests), then timed over ``repeats`` steps.

Every sampler kind of :data:`priorl.registry.SAMPLERS` but ``uniform`` runs at its defaults under its kind's name
(``prioritized``: the heap; ``prioritized-pass``: selection among ``2 B`` candidates of a shuffled pass);
``beta`` and ``thompson`` are ``experimental-prioritized`` with ``estimator="beta"`` (5 levels, assigned at
random) and greedy or Thompson selection.

The naive baselines hold the same priorities in a flat array and touch all M problems per step:
- ``sort``: a full sort of all priorities, top-B;
- ``numpy``: ``Generator.choice`` without replacement, P ∝ priority + floor, over all M.
"""

from __future__ import annotations

import time

import numpy as np

from priorl import registry
from priorl.bench.common import progress_bar, time_steps
from priorl.sampling.validation import group_moments

NAIVE = ("sort", "numpy")  # the flat references
VARIANTS = ("beta", "thompson")  # the heap with the beta estimator


def sampler_impls() -> tuple[str, ...]:
    """What ``priorl bench sampler`` times: the registered kinds (but uniform), the beta variants, the naive ones."""
    return (*(k for k in registry.SAMPLERS if k != "uniform"), *VARIANTS, *NAIVE)


class _FlatPrioritySampler:
    """Naive reference: priorities in one array; selection looks at all of it every step."""

    def __init__(self, num_problems: int, rule: str, seed: int = 0, floor: float = 0.01) -> None:
        self.num_problems = num_problems
        self.priority = np.full(num_problems, np.inf)  # unseen first
        self.rule = rule
        self.floor = floor
        self.rng = np.random.default_rng(seed)

    def sample(self, batch_size: int) -> list[int]:
        if self.rule == "sort":
            return np.argsort(-self.priority, kind="stable")[:batch_size].tolist()
        w = np.where(np.isinf(self.priority), 1.0, self.priority) + self.floor
        return self.rng.choice(self.num_problems, size=batch_size, replace=False, p=w / w.sum()).tolist()

    def observe(self, problem_ids, rewards) -> None:
        ids, _, _, var, _ = group_moments(problem_ids, rewards, self.num_problems)
        self.priority[ids] = var


def _rewards_for(ids: list[int], solve_p: np.ndarray, group_size: int, rng: np.random.Generator) -> np.ndarray:
    return (rng.random((len(ids), group_size)) < solve_p[ids, None]).astype(np.float64)


def _make(impl: str, m: int, seed: int):
    if impl in registry.SAMPLERS:
        return registry.SAMPLERS[impl].build(num_problems=m, seed=seed)
    if impl in VARIANTS:
        levels = np.random.default_rng(seed + 1).integers(0, 5, size=m)
        selection = "greedy" if impl == "beta" else "thompson"
        options = {"estimator": "beta", "selection": selection}
        return registry.SAMPLERS["experimental-prioritized"].build(options, num_problems=m, seed=seed, levels=levels)
    if impl in NAIVE:
        return _FlatPrioritySampler(m, impl, seed)
    raise ValueError(f"unknown sampler implementation {impl!r}; choose from {', '.join(sampler_impls())}")


def _warm_up(sampler, solve_p: np.ndarray, group_size: int, rng: np.random.Generator) -> None:
    """Observe every problem once, so timing starts in the steady state."""
    all_ids = np.arange(solve_p.size)
    sampler.observe(all_ids.tolist(), _rewards_for(all_ids, solve_p, group_size, rng))


def run_sampler_bench(
    sizes: list[int],
    *,
    batch_size: int = 512,
    group_size: int = 8,
    repeats: int = 20,
    seed: int = 0,
    progress: bool = False,
    impls: tuple[str, ...] | None = None,
) -> list[dict]:
    """Median step time in ms per implementation (default :func:`sampler_impls`) and size: rows of impl,
    num_problems, batch_size, step_ms."""
    impls = sampler_impls() if impls is None else impls
    results = []
    with progress_bar(len(sizes) * len(impls), "bench sampler", enabled=progress) as advance:
        for m in sizes:
            rng = np.random.default_rng(seed)
            # A spread of difficulties: many problems near always / never solved, as in real data.
            solve_p = 1.0 / (1.0 + np.exp(-rng.normal(0.0, 3.0, size=m)))
            for impl in impls:
                sampler = _make(impl, m, seed)
                _warm_up(sampler, solve_p, group_size, rng)

                def step(sampler=sampler, solve_p=solve_p, rng=rng):
                    ids = sampler.sample(batch_size)
                    sampler.observe(ids, _rewards_for(ids, solve_p, group_size, rng))

                # Expensive naive steps at large M get fewer repeats; the median is still stable.
                reps = repeats if impl not in NAIVE or m <= 100_000 else max(3, repeats // 4)
                ms = time_steps(step, reps)
                results.append({"impl": impl, "num_problems": m, "batch_size": batch_size, "step_ms": round(ms, 4)})
                advance(f"{impl} M={m:,}")
    return results


def run_undo_bench(
    sizes: list[int],
    *,
    batch_size: int = 512,
    group_size: int = 8,
    rounds: int = 2,
    steps: int = 20,
    seed: int = 0,
    impls: tuple[str, ...] = (*registry.SAMPLERS, "beta"),
) -> list[dict]:
    """What the trainer pays a step to be able to drop a dynamic-sampling step, old way against new, in one run.

    Each timed step is ``rounds`` x (``sample(B)``, ``observe`` of B groups), as dynamic sampling does before its
    update. Before each one both snapshots are taken: ``state_dict()`` (the trainer before round 6) and
    ``undo_mark()`` (now). ``mark_amortized_ms`` adds the mark's periodic O(M) base, spread over the steps
    between two bases. Restoring is timed once, at the end (dropping the last step): ``load_state_dict`` of the
    snapshot against ``undo_to``, which replays the calls logged since the base (it runs once, when a run stops).
    """
    rows = []
    for m in sizes:
        rng = np.random.default_rng(seed)
        solve_p = 1.0 / (1.0 + np.exp(-rng.normal(0.0, 3.0, size=m)))
        for impl in impls:
            sampler = _make(impl, m, seed)
            _warm_up(sampler, solve_p, group_size, rng)
            t0 = time.perf_counter()
            sampler.undo_mark()  # the first mark saves the base
            base_ms = (time.perf_counter() - t0) * 1e3
            times: dict[str, list[float]] = {"step_ms": [], "state_dict_ms": [], "mark_ms": []}
            for _ in range(steps):
                t0 = time.perf_counter()
                state = sampler.state_dict()
                t1 = time.perf_counter()
                mark = sampler.undo_mark()
                t2 = time.perf_counter()
                for _ in range(rounds):
                    ids = sampler.sample(batch_size)
                    sampler.observe(ids, _rewards_for(ids, solve_p, group_size, rng))
                t3 = time.perf_counter()
                times["state_dict_ms"].append((t1 - t0) * 1e3)
                times["mark_ms"].append((t2 - t1) * 1e3)
                times["step_ms"].append((t3 - t2) * 1e3)
            t0 = time.perf_counter()
            sampler.undo_to(mark)
            undo_ms = (time.perf_counter() - t0) * 1e3
            t0 = time.perf_counter()
            sampler.load_state_dict(state)
            load_ms = (time.perf_counter() - t0) * 1e3
            row = {"impl": impl, "num_problems": m, "batch_size": batch_size, "rounds": rounds}
            row.update({k: round(float(np.median(v)), 4) for k, v in times.items()})
            steps_per_base = sampler.rebase_after / (2 * rounds * batch_size)
            row["base_ms"] = round(base_ms, 3)
            row["steps_per_base"] = round(steps_per_base, 1)
            row["mark_amortized_ms"] = round(row["mark_ms"] + base_ms / max(steps_per_base, 1.0), 4)
            row["snapshot_speedup"] = round(row["state_dict_ms"] / row["mark_amortized_ms"], 1)
            row["restore_load_state_dict_ms"] = round(load_ms, 3)
            row["restore_undo_to_ms"] = round(undo_ms, 3)
            rows.append(row)
    return rows
