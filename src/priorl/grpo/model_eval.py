"""``priorl eval``: held-out accuracy of a model, of a run's last checkpoint, or of every run in a directory of
runs (a ``priorl compare`` study), with the trainer's own builders (:mod:`priorl.grpo.stack`) and evaluation
(:func:`priorl.eval.evaluate_held_out`).

A run is evaluated as it evaluated itself: for every option not given, its config.yaml says (held-out set,
verifier, prompt format, stop strings, completion length, temperature, dtype), so the figure matches its
eval.jsonl.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from priorl.config import RunConfig, VerifierConfig, load_config

STUDY_FILE = "study.json"  # what `priorl compare` writes first into its output directory


@dataclass
class EvalOptions:
    """``priorl eval``'s options; None: the run's value (for a run), else the command's default."""

    data: str | None = None
    samples: int = 1  # k > 1: also avg@k and pass@k
    temperature: float | None = None
    verifier: str | None = None
    max_new_tokens: int | None = None
    max_problems: int | None = None
    sequences_per_call: int | None = None
    chat_template: str | None = None
    system_prompt: str | None = None
    stop: list[str] | None = field(default=None)
    seed: int = 0


def is_run_dir(path: Path) -> bool:
    """A ``priorl train`` run directory: checkpoints/, or config.yaml with run.json or summary.json."""
    if (path / "checkpoints").is_dir():
        return True
    return (path / "config.yaml").is_file() and ((path / "run.json").is_file() or (path / "summary.json").is_file())


def find_runs(root: Path) -> list[Path]:
    """The run directories under ``root`` at any depth (a study's PRESET/seed_S, or deeper), sorted by path;
    the inside of a run directory is not searched."""
    found: list[Path] = []

    def walk(d: Path) -> None:
        for child in sorted(p for p in d.iterdir() if p.is_dir()):
            if is_run_dir(child):
                found.append(child)
            else:
                walk(child)

    walk(root)
    return found


def holds_runs(path: Path) -> bool:
    """Whether ``path`` is a directory of runs: a study (study.json), or a directory that is not itself a run or a
    model (no config.json) with run directories below it."""
    if not path.is_dir() or is_run_dir(path):
        return False
    if (path / STUDY_FILE).is_file():
        return True
    return not (path / "config.json").is_file() and bool(find_runs(path))


def eval_config(run: RunConfig | None, model: str, o: EvalOptions) -> RunConfig:
    """The config the evaluation builds its parts from: the run's (or the defaults), with the model path and
    every option given. ``eval`` holds what one evaluation uses (length, sequences per call, samples)."""
    base = run if run is not None else RunConfig()
    g, e, d = base.generation, base.eval, base.data
    gen = {
        "temperature": o.temperature if o.temperature is not None else (g.temperature if run else 1.0),
        "stop": o.stop if o.stop is not None else g.stop,
    }
    new_tokens = o.max_new_tokens or ((e.max_new_tokens or g.max_new_tokens) if run else 16)
    per_call = o.sequences_per_call or ((e.sequences_per_call or g.sequences_per_call) if run else 64)
    data = {"chat_template": o.chat_template or (d.chat_template if run else "auto")}
    if o.system_prompt is not None:
        data["system_prompt"] = o.system_prompt
    limit = o.max_problems if o.max_problems is not None else (e.max_problems if run else None)
    update = {
        "model": base.model.model_copy(
            update={"path": model, "gguf_file": None, "lora": None}
        ),  # a checkpoint: plain HF
        "generation": g.model_copy(update={**gen, "max_new_tokens": new_tokens, "sequences_per_call": per_call}),
        "data": d.model_copy(update=data),
        "eval": e.model_copy(
            update={
                "max_new_tokens": new_tokens,
                "sequences_per_call": per_call,
                "max_problems": limit,
                "samples": o.samples if o.samples > 1 else 0,
            }
        ),  # fmt: skip
    }
    if o.verifier is not None:  # a verifier named here comes with its own defaults, not the run's settings
        update["verifier"] = VerifierConfig(name=o.verifier)
    return base.model_copy(update=update)


def last_model(run_dir: Path) -> tuple[Path, int]:
    """The model directory of the run's last complete checkpoint and its step (ValueError if there is none)."""
    from priorl.grpo.checkpoint import list_checkpoints, read_trainer_state

    done = list_checkpoints(run_dir)
    if not done:
        raise ValueError(f"{run_dir}: the run has no complete checkpoint")
    return done[-1] / "model", int(read_trainer_state(done[-1]).get("step", 0))


def evaluate_model(model: str, o: EvalOptions, run_dir: Path | None = None) -> dict:
    """Evaluate ``model`` (a model directory, hub name or builtin), or with ``run_dir`` that run's last checkpoint
    under its own config; returns :func:`~priorl.eval.evaluate_held_out`'s result with ``model``, ``held_out``
    (the problems, in words) and, for a run, ``step``."""
    import torch

    from priorl.data import load_problems
    from priorl.data.prepare import fit_context, run_problems
    from priorl.eval import evaluate_held_out
    from priorl.grpo.stack import build_generator, build_policy, build_verifier

    run, step = None, None
    if run_dir is not None:
        path, step = last_model(run_dir)
        model = str(path)
        if (run_dir / "config.yaml").is_file():
            run = load_config(run_dir / "config.yaml")
    cfg = eval_config(run, model, o)
    policy = build_policy(cfg, trainable=False)
    if o.data is not None or run is None:
        spec = o.data or "builtin:arithmetic-test"
        problems = load_problems(spec)[: cfg.eval.max_problems]
        held_out = f"{spec} ({len(problems)} problems)"
    else:  # the run's held-out set, exactly as its trainer built it (levels, eval.max_problems, data.overlong)
        held = run_problems(cfg)
        problems, _ = fit_context(held.test, policy.tokenizer, policy.model, cfg, policy.formatter.encode)
        held_out = f"the run's held-out set, {held.held_out}"
    generator = build_generator(cfg, policy)
    verifier = build_verifier(cfg)
    torch.manual_seed(o.seed)
    try:
        e = cfg.eval
        result = evaluate_held_out(
            generator, problems, verifier, samples=e.samples, max_new_tokens=e.max_new_tokens,
            batch_size=e.sequences_per_call,
        )  # fmt: skip
    finally:
        verifier.close()
    result.update(model=model, held_out=held_out, temperature=cfg.generation.temperature)
    if step is not None:
        result["step"] = step
    if "sampled" in result:  # the key `priorl eval --json` has always had for avg@k
        s = result["sampled"]
        result["avg_at_k"] = {"k": s["samples"], "accuracy": s["accuracy"], "pass_at_k": s["pass_at_k"],
                              "by_level": s["by_level"]}  # fmt: skip
    return result


def evaluate_runs(root: Path, o: EvalOptions, on_run=None) -> list[dict]:
    """Every run under ``root`` (:func:`find_runs`), each at its last checkpoint under its own config: one entry
    per run, ``{"run": relative path, **result}``, or ``{"run", "error"}`` for a run that cannot be evaluated (no
    checkpoint yet, a failed run). ``on_run(entry)`` is called after each."""
    runs = find_runs(root)
    if not runs:
        raise ValueError(
            f"{root}: no run directories in it (a run directory has config.yaml and run.json or summary.json)"
        )
    out = []
    for run_dir in runs:
        name = run_dir.relative_to(root).as_posix()
        try:
            entry = {"run": name, **evaluate_model(str(run_dir), o, run_dir=run_dir)}
        except (ValueError, OSError) as exc:
            entry = {"run": name, "error": str(exc)}
        out.append(entry)
        if on_run is not None:
            on_run(entry)
    return out
