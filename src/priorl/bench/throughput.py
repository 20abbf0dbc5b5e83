"""Training throughput: priorl's trainer against TRL's ``GRPOTrainer`` on the same setup, in one run.

Both train the shipped tiny-arith model on the builtin arithmetic task with uniform GRPO (no KL term,
no replay, no prioritization): the same problems per step, group size, generation length, learning
rate and scoring (priorl's ``numeric`` verifier, in-process). Each side runs ``warmup`` untimed steps,
then ``steps`` timed ones; the figure is the median seconds per optimizer step (generation + scoring +
update), and completions per second = completions per step / that median.

What differs, by design of each engine: TRL generates with ``model.generate`` through its own
padding/masking and recomputes log-probs in a separate forward pass; priorl's ``HFGenerator`` records
behaviour log-probs during generation. Neither side evaluates or checkpoints inside the timed steps.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path


def _priorl_steps(*, batch_size, group_size, max_new_tokens, lr, steps, warmup, seed, out_dir) -> list[float]:
    from priorl.config import load_config
    from priorl.grpo.trainer import Trainer

    cfg = load_config(
        None,
        [
            "strategy=grpo",
            "model.path=builtin:tiny-arith",
            "model.device=cpu",
            "model.dtype=float32",
            "data.train=builtin:arithmetic",
            "data.test=null",
            "verifier.name=numeric",
            f"seed={seed}",
            f"out_dir={out_dir}",
            f"generation.group_size={group_size}",
            f"generation.max_new_tokens={max_new_tokens}",
            "generation.temperature=1.0",
            f"train.batch_size={batch_size}",
            f"train.micro_batch_size={batch_size * group_size}",
            f"train.max_steps={steps + warmup}",
            f"train.lr={lr}",
            "train.warmup_steps=0",
            "eval.before=false",
            "eval.after=false",
            "checkpoint.every=0",
            "logging.tensorboard=false",
        ],
    )
    trainer = Trainer(cfg)
    times = []
    try:
        for i in range(steps + warmup):
            trainer.step += 1
            t0 = time.perf_counter()
            trainer.train_step()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    finally:
        trainer.close_logs()
        trainer.close()
    return times


def _trl_steps(*, batch_size, group_size, max_new_tokens, lr, steps, warmup, seed, out_dir) -> list[float]:
    try:
        from datasets import Dataset
        from transformers import TrainerCallback
        from trl import GRPOConfig, GRPOTrainer
    except ImportError as exc:
        raise RuntimeError("priorl bench throughput needs TRL: pip install 'priorl[trl]'") from exc

    from priorl.config import ModelConfig
    from priorl.data import load_problems
    from priorl.models import load_policy, load_tokenizer
    from priorl.rewards import make_verifier

    problems = load_problems("builtin:arithmetic")
    data = Dataset.from_dict({"prompt": [p.prompt for p in problems], "answer": [p.answer for p in problems]})
    verifier = make_verifier("numeric")

    def numeric_reward(completions, answer, **kwargs):
        return verifier.score_batch(completions, answer).rewards

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.times: list[float] = []
            self._t0 = 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            self._t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.times.append(time.perf_counter() - self._t0)

    model_cfg = ModelConfig(path="builtin:tiny-arith", device="cpu", dtype="float32")
    tok = load_tokenizer(model_cfg)
    tok.padding_side = "left"
    timer = StepTimer()
    args = GRPOConfig(
        output_dir=str(out_dir),
        per_device_train_batch_size=batch_size * group_size,
        num_generations=group_size,
        max_completion_length=max_new_tokens,
        max_steps=steps + warmup,
        learning_rate=lr,
        lr_scheduler_type="constant",
        beta=0.0,
        temperature=1.0,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=seed,
        disable_tqdm=True,
    )
    trainer = GRPOTrainer(
        model=load_policy(model_cfg),
        reward_funcs=numeric_reward,
        args=args,
        train_dataset=data,
        processing_class=tok,
        callbacks=[timer],
    )
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    for noisy in (PrinterCallback, ProgressCallback):  # keep stdout clean for --json
        trainer.remove_callback(noisy)
    try:
        trainer.train()
    finally:
        verifier.close()
    return timer.times[warmup:]


def run_throughput_bench(
    *,
    batch_size: int = 16,
    group_size: int = 8,
    max_new_tokens: int = 8,
    lr: float = 5e-5,
    steps: int = 5,
    warmup: int = 1,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Time both trainers; returns the setup, per-engine step times and the ratio TRL / priorl."""
    from priorl.bench.common import progress_bar

    setup = dict(
        batch_size=batch_size, group_size=group_size, max_new_tokens=max_new_tokens, lr=lr, steps=steps, warmup=warmup
    )
    results: dict = {"setup": {**setup, "completions_per_step": batch_size * group_size, "seed": seed}}
    with (
        tempfile.TemporaryDirectory(prefix="priorl-throughput-") as tmp,
        progress_bar(2, "throughput", enabled=progress) as advance,
    ):
        for name, fn in (("priorl", _priorl_steps), ("trl", _trl_steps)):
            times = fn(**setup, seed=seed, out_dir=Path(tmp) / name)
            median = statistics.median(times)
            results[name] = {
                "seconds_per_step": median,
                "completions_per_second": batch_size * group_size / median,
                "step_seconds": times,
            }
            advance(name)
    results["trl_over_priorl_seconds"] = results["trl"]["seconds_per_step"] / results["priorl"]["seconds_per_step"]
    return results


def print_throughput(results: dict, *, as_json: bool = False) -> None:
    """A table (or JSON on stdout) of the two engines and their ratio."""
    import json

    if as_json:
        print(json.dumps(results, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    s = results["setup"]
    table = Table(
        title=(
            f"GRPO step on tiny-arith, CPU: {s['batch_size']} problems x {s['group_size']} completions, "
            f"{s['max_new_tokens']} new tokens, median of {s['steps']} steps"
        )
    )
    for col in ("engine", "s / step", "completions / s"):
        table.add_column(col, justify="right" if col != "engine" else "left")
    for name in ("priorl", "trl"):
        r = results[name]
        table.add_row(name, f"{r['seconds_per_step']:.3f}", f"{r['completions_per_second']:.1f}")
    Console().print(table)
    Console().print(f"TRL step time / priorl step time: {results['trl_over_priorl_seconds']:.2f}x")
