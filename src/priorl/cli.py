"""The ``priorl`` command line.

Heavy imports happen inside each command so that ``priorl --help`` answers at once.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    name="priorl",
    help=(
        "GRPO post-training that spends its generation where the gradient is.\n\n"
        "priorl picks training problems by their reward variance p(1-p) (prioritized sampling) and "
        "replays past rollouts with large |advantage| for a bounded number of steps (advantage-"
        "prioritized replay)."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
bench_app = typer.Typer(
    help=(
        "Speed benchmarks (each against a naive baseline in the same run) and a simulated learner.\n\n"
        "Examples:\n\n"
        "  priorl bench sampler            # heap sampler vs full sort vs numpy weighted choice\n\n"
        "  priorl bench replay --json      # sum-tree replay buffer vs naive weighted choice\n\n"
        "  priorl bench simulate           # uniform vs prioritized selection at an equal budget"
    ),
    no_args_is_help=True,
)
app.add_typer(bench_app, name="bench")

_err = Console(stderr=True)


def _fail(message: str) -> None:
    """Print a one-line error (no traceback) and exit with status 2."""
    _err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=2)


JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON on stdout instead of a table.")
]
RepeatsOpt = Annotated[int, typer.Option(min=1, help="Timed steps per size (the median is reported).")]
SeedOpt = Annotated[int, typer.Option(help="Random seed.")]


@bench_app.command("sampler")
def bench_sampler(
    json_out: JsonOpt = False,
    sizes: Annotated[str, typer.Option(help="Comma-separated numbers of problems M.")] = "1e3,1e4,1e5,1e6",
    batch_size: Annotated[int, typer.Option(min=1, help="Problems selected per step (B).")] = 512,
    group_size: Annotated[int, typer.Option(min=1, help="Rollouts per problem (G).")] = 8,
    repeats: RepeatsOpt = 20,
    seed: SeedOpt = 0,
) -> None:
    """Time one sampler step (sample B, observe B groups of G) for the heap sampler and two naive ones.

    The naive samplers are a full sort of all M priorities per step ("sort") and a numpy weighted
    choice over all M ("numpy"). Targets: at M = 10^6 the heap step is >= 20x faster than the sort
    step, and its time at 10^6 is under 3x its time at 10^4.
    """
    from priorl.bench.common import emit, parse_sizes, target_ratios
    from priorl.bench.sampler import run_sampler_bench

    try:
        ms = parse_sizes(sizes)
    except ValueError as exc:
        _fail(f"--sizes: {exc}")
    for m in ms:
        if batch_size > m:
            _fail(f"--batch-size {batch_size} is larger than M = {m}")
    results = run_sampler_bench(
        ms, batch_size=batch_size, group_size=group_size, repeats=repeats, seed=seed, progress=True
    )
    extra = target_ratios(results, size_key="num_problems", baseline="sort", candidate="heap")
    emit(
        results,
        as_json=json_out,
        title=f"sampler step: sample {batch_size}, observe {batch_size} groups of {group_size}",
        size_key="num_problems",
        baseline="sort",
        candidate="heap",
        extra=extra,
    )


@bench_app.command("replay")
def bench_replay(
    json_out: JsonOpt = False,
    sizes: Annotated[
        str, typer.Option(help="Comma-separated numbers of stored rollouts.")
    ] = "1e3,1e4,1e5,1e6",
    fresh: Annotated[int, typer.Option(min=1, help="Fresh rollouts composed per step.")] = 512,
    repeats: RepeatsOpt = 20,
    seed: SeedOpt = 0,
) -> None:
    """Time one replay step (compose FRESH fresh rollouts with replay_ratio 0.5) at several buffer sizes.

    Compares the sum-tree buffer with a naive weighted choice over all stored rollouts. Targets: at
    10^6 stored the sum-tree step is >= 10x faster than naive, and its time at 10^6 is under 3x its
    time at 10^4.
    """
    from priorl.bench.common import emit, parse_sizes, target_ratios
    from priorl.bench.replay import run_replay_bench

    try:
        ns = parse_sizes(sizes)
    except ValueError as exc:
        _fail(f"--sizes: {exc}")
    results = run_replay_bench(ns, fresh=fresh, repeats=repeats, seed=seed, progress=True)
    extra = target_ratios(results, size_key="stored", baseline="naive", candidate="sumtree")
    emit(
        results,
        as_json=json_out,
        title=f"replay step: compose {fresh} fresh, replay_ratio 0.5",
        size_key="stored",
        baseline="naive",
        candidate="sumtree",
        extra=extra,
    )


@bench_app.command("simulate")
def bench_simulate(
    json_out: JsonOpt = False,
    num_problems: Annotated[int, typer.Option(min=2, help="Problems in the simulated training set.")] = 2000,
    batch_size: Annotated[int, typer.Option(min=1, help="Problems per step.")] = 64,
    group_size: Annotated[int, typer.Option(min=2, help="Rollouts per problem.")] = 8,
    steps: Annotated[int, typer.Option(min=1, help="Training steps (equal rollout budget for all).")] = 300,
    seeds: Annotated[int, typer.Option(min=1, help="Independent seeds averaged per sampler.")] = 3,
    sweep: Annotated[
        bool,
        typer.Option(
            "--sweep", help="Also run the sampler's options (retest schedules, estimators, selection)."
        ),
    ] = False,
    seed: SeedOpt = 0,
) -> None:
    """Uniform vs prioritized selection on a simulated learner, at an equal rollout budget.

    Each problem has a latent solve probability that rises when it is trained with a non-zero
    advantage. Prints the informative fraction (share of groups with reward variance > 0) and the
    final mean solve probability for each sampler, so the sampler's value is visible without a model.
    """
    from priorl.bench.simulate import print_simulation, run_simulation

    if batch_size > num_problems:
        _fail(f"--batch-size {batch_size} is larger than --num-problems {num_problems}")
    report = run_simulation(
        num_problems=num_problems,
        batch_size=batch_size,
        group_size=group_size,
        steps=steps,
        seeds=seeds,
        seed=seed,
        sweep=sweep,
        progress=True,
    )
    print_simulation(report, as_json=json_out)


def main() -> None:
    """Entry point of the ``priorl`` console script: runs the app, turning user errors into one line."""
    try:
        app()
    except (ValueError, FileNotFoundError) as exc:
        _err.print(f"[bold red]error:[/] {exc}")
        sys.exit(2)


if __name__ == "__main__":
    main()
