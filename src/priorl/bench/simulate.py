"""`priorl bench simulate`: the sampler's value on a simulated learner, without a model.

The learner: problem ``q`` has a difficulty ``d_q`` (logits) and the model a global skill ``s`` plus a
per-problem skill ``m_q``; it solves ``q`` with probability ``sigmoid(s + m_q - d_q)``. A training step
rolls out ``G`` Bernoulli rewards for each of ``B`` chosen problems. Like a policy gradient, a group
teaches in proportion to its reward variance (zero for a group that all passed or all failed):
``m_q`` grows by ``lr_local * 4 var_q`` and the global skill by ``lr_global * mean(4 var)`` (transfer to
every problem, seen or not). Per-problem skill decays a little each step (forgetting), so a solved
problem left alone can slip back: that is what retesting is for.

Each problem also has a *level*, for the samplers that fit a prior per level (``estimator="beta"``): the
quintile of its difficulty plus Gaussian noise of ``level_noise * difficulty_std``, so levels are
informative (like a dataset's difficulty labels) but not exact (with the default 0.5 the noisy value
correlates 0.89 with the difficulty). The levels are drawn from their own seeded stream, so adding them
changed nothing else in the simulation.

Every sampler gets the same rollout budget (``steps * B * G``). Reported per sampler, averaged over
seeds: the informative fraction (share of groups with non-zero variance), the final mean solve
probability on the training problems and on held-out ones (skill and difficulty only), and the rollouts
needed to reach the uniform sampler's final training solve rate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from priorl.bench.common import print_json, progress_bar
from priorl.sampling import PrioritizedSampler, UniformSampler
from priorl.sampling.experimental import ExperimentalPrioritizedSampler


@dataclass(frozen=True)
class Learner:
    """Parameters of the simulated learner."""

    difficulty_mean: float = 1.0  # logits; > 0: most problems start hard
    difficulty_std: float = 3.0
    lr_local: float = 0.6
    lr_global: float = 0.01
    forget_rate: float = 0.002  # per-step decay of per-problem skill
    level_noise: float = 0.5  # noise of the level labels, in units of difficulty_std


# The samplers compared: name -> constructor(num_problems, seed, levels). The default prioritized sampler
# comes first after uniform; the sweep adds the options, so their value can be read off the same table.
def _samplers(sweep: bool) -> dict:
    base = {
        "uniform": lambda m, s, lv: UniformSampler(m, seed=s),
        "prioritized": lambda m, s, lv: PrioritizedSampler(m, seed=s),
    }
    if not sweep:
        return base

    def prio(**kw):
        return lambda m, s, lv: PrioritizedSampler(m, seed=s, **kw)

    def variant(**kw):  # another estimator or selection: the experimental form of the heap sampler
        return lambda m, s, lv: ExperimentalPrioritizedSampler(m, seed=s, **kw)

    def beta(pooled: bool = False, **kw):
        return lambda m, s, lv: ExperimentalPrioritizedSampler(
            m, seed=s, estimator="beta", levels=None if pooled else lv, **kw
        )

    base.update(
        {
            "prio no-retest": prio(retest_every=None),
            "prio retest_every=5": prio(retest_every=5),
            "prio retest_every=20": prio(retest_every=20),
            "prio fraction=0.1": prio(retest_every=None, retest_fraction=0.1),
            "prio fraction=0.05": prio(retest_every=None, retest_fraction=0.05),
            "prio ema": variant(estimator="ema", min_priority=0.01),
            "prio window=3": variant(estimator="window", window=3),
            "prio stochastic": variant(selection="stochastic"),
            # The beta estimator and Thompson selection are experimental since round 9 (slower than tuned grpo
            # on both mixes of the testbed, benchmarks/RESULTS.md): one row each, under that name.
            "experimental beta": beta(),
            "experimental beta thompson": beta(selection="thompson"),
        }
    )
    return base


def make_problems(num_problems: int, seed: int, learner: Learner) -> dict:
    """Training and held-out difficulties and the training problems' noisy levels (0..4) for one seed."""
    rng = np.random.default_rng(10_000 + seed)  # the same problems and rollout noise stream for all samplers
    d_train = rng.normal(learner.difficulty_mean, learner.difficulty_std, size=num_problems)
    d_test = rng.normal(learner.difficulty_mean, learner.difficulty_std, size=num_problems)
    noisy = d_train + np.random.default_rng(20_000 + seed).normal(
        0.0, learner.level_noise * learner.difficulty_std, size=num_problems
    )
    levels = np.searchsorted(np.quantile(noisy, [0.2, 0.4, 0.6, 0.8]), noisy)
    return {"rng": rng, "d_train": d_train, "d_test": d_test, "levels": levels.tolist()}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def simulate_one(sampler, problems: dict, *, batch_size, group_size, steps, learner: Learner) -> dict:
    """Run one sampler on one seed's ``problems`` (from :func:`make_problems`); returns curves and totals."""
    rng, d_train, d_test = problems["rng"], problems["d_train"], problems["d_test"]
    num_problems = d_train.size
    skill, m = 0.0, np.zeros(num_problems)
    train_curve, informative = [], []
    for _ in range(steps):
        ids = np.asarray(sampler.sample(batch_size))
        p = _sigmoid(skill + m[ids] - d_train[ids])
        rewards = (rng.random((ids.size, group_size)) < p[:, None]).astype(np.float64)
        sampler.observe(ids.tolist(), rewards)
        var = rewards.var(axis=1)
        informative.append(float(np.mean(var > 0)))
        m *= 1.0 - learner.forget_rate
        m[ids] += learner.lr_local * 4.0 * var
        skill += learner.lr_global * 4.0 * float(var.mean())
        train_curve.append(float(_sigmoid(skill + m - d_train).mean()))
    return {
        "train_curve": train_curve,
        "informative_fraction": float(np.mean(informative)),
        "final_train": train_curve[-1],
        "final_heldout": float(_sigmoid(skill - d_test).mean()),
        "metrics": sampler.metrics(),
    }


def run_simulation(
    *,
    num_problems: int = 2000,
    batch_size: int = 64,
    group_size: int = 8,
    steps: int = 300,
    seeds: int = 3,
    seed: int = 0,
    sweep: bool = False,
    learner: Learner | None = None,
    progress: bool = False,
) -> dict:
    """Run every sampler on ``seeds`` seeds at an equal rollout budget; returns a JSON-able report."""
    learner = learner or Learner()
    samplers = _samplers(sweep)
    runs: dict[str, list[dict]] = {name: [] for name in samplers}
    with progress_bar(len(samplers) * seeds, "bench simulate", enabled=progress) as advance:
        for name, make in samplers.items():
            for k in range(seeds):
                s = seed + k
                problems = make_problems(num_problems, s, learner)
                runs[name].append(
                    simulate_one(
                        make(num_problems, s, problems["levels"]),
                        problems,
                        batch_size=batch_size,
                        group_size=group_size,
                        steps=steps,
                        learner=learner,
                    )
                )
                advance(f"{name} seed {s}")
    per_step = batch_size * group_size
    target = float(np.mean([r["final_train"] for r in runs["uniform"]]))
    rows = []
    for name, rs in runs.items():
        curve = np.mean([r["train_curve"] for r in rs], axis=0)
        reached = np.flatnonzero(curve >= target)
        rows.append(
            {
                "sampler": name,
                "informative_fraction": round(float(np.mean([r["informative_fraction"] for r in rs])), 4),
                "final_train_solve": round(float(curve[-1]), 4),
                "final_train_solve_std": round(float(np.std([r["final_train"] for r in rs])), 4),
                "final_heldout_solve": round(float(np.mean([r["final_heldout"] for r in rs])), 4),
                "rollouts_to_uniform_final": int((reached[0] + 1) * per_step) if reached.size else None,
                "forgetting_total": int(np.mean([r["metrics"]["forgetting_total"] for r in rs])),
                "breakthroughs_total": int(np.mean([r["metrics"]["breakthroughs_total"] for r in rs])),
            }
        )
    return {
        "setup": {
            "num_problems": num_problems,
            "batch_size": batch_size,
            "group_size": group_size,
            "steps": steps,
            "seeds": seeds,
            "rollout_budget": steps * per_step,
            "learner": asdict(learner),
        },
        "results": rows,
    }


def print_simulation(report: dict, *, as_json: bool) -> None:
    """Print the report as JSON or as a table."""
    if as_json:
        print_json(report)
        return
    from rich.console import Console
    from rich.table import Table

    setup = report["setup"]
    table = Table(
        title=(
            f"simulated learner: {setup['num_problems']} problems, B={setup['batch_size']}, "
            f"G={setup['group_size']}, {setup['steps']} steps ({setup['rollout_budget']:,} rollouts each), "
            f"{setup['seeds']} seeds"
        )
    )
    columns = (
        "sampler",
        "informative",
        "solve train",
        "solve held-out",
        "rollouts to unif.",
        "forgot",
        "broke thr.",
    )
    for col in columns:
        table.add_column(col, justify="left" if col == "sampler" else "right", no_wrap=col == "sampler")
    for r in report["results"]:
        reach = r["rollouts_to_uniform_final"]
        table.add_row(
            r["sampler"],
            f"{r['informative_fraction']:.1%}",
            f"{r['final_train_solve']:.3f} ± {r['final_train_solve_std']:.3f}",
            f"{r['final_heldout_solve']:.3f}",
            f"{reach:,}" if reach is not None else "never",
            str(r["forgetting_total"]),
            str(r["breakthroughs_total"]),
        )
    console = Console(width=max(Console().width, 120))
    console.print(table)
    console.print(
        "informative: share of groups with non-zero reward variance; solve: mean solve probability at the "
        "end (± std over seeds); rollouts to unif.: generated completions until the mean training solve rate "
        "reached "
        "the uniform sampler's final one; forgot / broke thr.: solved -> not solved and unsolved -> not "
        "unsolved transitions seen on re-observation."
    )
