"""A run config trained by TRL's ``GRPOTrainer`` instead of priorl's trainer (``train.engine: trl``).

The same config, data, model, held-out evaluation and run-directory logs as a priorl run, so ``priorl train``
and ``priorl compare`` (tuning, statistics, report) treat a TRL run like any other: ``priorl compare -c
configs/study.yaml --presets grpo,adv-replay --set train.engine=trl`` is TRL alone against TRL + priorl's
rollout replay (:class:`~priorl.integrations.trl.PriorlGRPOTrainer`), each at its tuned learning rate.

How the config maps onto TRL 1.16 (one training *generation* of TRL = one priorl step):

- ``train.batch_size`` problems x ``generation.group_size`` completions per generation, split into
  ``train.updates_per_step`` optimizer steps (``steps_per_generation``; ``per_device_train_batch_size`` =
  rows / updates, no gradient accumulation); ``train.max_rollouts`` (or ``max_steps``) sets the generations.
- ``train.lr`` (constant after ``lr_warmup_steps`` generations of linear warm-up), ``weight_decay``, ``betas``,
  ``grad_clip`` (``max_grad_norm``; None = no clipping), ``eps_low`` / ``eps_high`` (``epsilon`` /
  ``epsilon_high``), ``dual_clip`` (TRL's ``delta``, which bounds the ratio of the unclipped term: the same
  bound on negative-advantage tokens as priorl's dual clip), ``kl_beta`` (``beta``), ``advantage_scale``
  (``scale_rewards``: group or none); TRL's ``dapo`` loss (token mean over the batch, as priorl's).
- ``model.precision`` (``bf16``: accelerate's bf16 autocast over the float32 weights). TRL computes its own
  old log-probs where it needs them, so ``train.old_logprobs`` does not apply.
- ``generation.temperature`` and ``max_new_tokens`` (``max_completion_length``). Prompts are rendered with the
  run's prompt formatter (chat template, system prompt) and passed to TRL as text.
- ``sampler.kind`` other than uniform and ``replay.kind`` other than none run through priorl's adapter
  (:class:`~priorl.integrations.trl.PriorlGRPOTrainer`); both off is TRL's own ``GRPOTrainer``.
- Held-out evaluation: priorl's evaluator (greedy pass@1 by level) on the prompt ids TRL trains on, on the
  config's ``eval`` schedule, between generations.

Refused, by name: ``generation.stop`` (TRL's generate has no stop strings here), ``dynamic_sampling``,
``train.drop_zero_variance``, ``model.lora``. No checkpoints: a TRL run that stops before its end starts again
from the beginning (``priorl compare --resume`` does so; ``priorl train --resume`` refuses).

Logs: ``config.yaml``, ``metrics.jsonl`` (per generation: ``rollouts_generated``, ``tokens_generated``,
``tokens_trained``, ``rows_trained``, ``informative_fraction``, ``reward_mean``, ``time/step`` (training time
of the generation, evaluations excluded), ``n_fresh``, ``n_replayed``), ``eval.jsonl`` and ``summary.json``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from priorl.config import RunConfig

ENGINE_NOTE = "trained by TRL's GRPOTrainer (train.engine=trl)"


class EngineStopped(KeyboardInterrupt):
    """A TRL run stopped between generations because ``stop()`` said so (nothing saved: it restarts)."""

    def __init__(self, generation: int) -> None:
        self.generation = generation
        super().__init__(f"stopped after generation {generation}; a TRL run is not checkpointed and restarts")


def check_trl_config(config: RunConfig) -> None:
    """Raise ``ValueError`` naming each setting ``train.engine: trl`` cannot honour."""
    bad = []
    if config.generation.stop:
        bad.append(f"generation.stop {config.generation.stop} (TRL generates to max_new_tokens or the end token)")
    if config.dynamic_sampling.enabled:
        bad.append("dynamic_sampling.enabled true")
    if config.train.drop_zero_variance:
        bad.append("train.drop_zero_variance true")
    if config.model.lora is not None:
        bad.append("model.lora (pass a peft config to TRL yourself)")
    rows = config.train.batch_size * config.generation.group_size
    if rows % config.train.updates_per_step:
        bad.append(
            f"train.batch_size x generation.group_size ({rows}) not a multiple of train.updates_per_step "
            f"({config.train.updates_per_step})"
        )
    if bad:
        raise ValueError("train.engine is 'trl', which cannot run: " + "; ".join(bad) + " (or use train.engine=priorl)")


def generations(config: RunConfig) -> int:
    """Training generations of the run: ``train.max_steps``, or fewer when ``train.max_rollouts`` ends it first."""
    t = config.train
    if t.max_rollouts is None:
        return t.max_steps
    return min(t.max_steps, math.ceil(t.max_rollouts / (t.batch_size * config.generation.group_size)))


def train_with_trl(
    config: RunConfig,
    *,
    overwrite: bool = False,
    on_step: Callable[[int, dict], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> dict:
    """Train ``config`` with TRL into ``config.out_dir``; returns the summary written to summary.json.

    ``on_step(generation, metrics)`` after each training generation; ``stop()`` is asked after each one and a
    true answer ends the run with :class:`EngineStopped`. Raises ``ValueError`` for settings TRL cannot run
    (:func:`check_trl_config`) and :class:`~priorl.grpo.rundir.RunDirectoryError` for a directory holding a run.
    """
    from transformers import PrinterCallback

    from priorl.config import dump_config
    from priorl.data.prepare import run_problems
    from priorl.grpo.checkpoint import seed_everything
    from priorl.grpo.rundir import check_fresh, open_run_dir
    from priorl.grpo.stack import build_policy, build_verifier

    c = config
    check_trl_config(c)
    run_dir = Path(c.out_dir)
    to_clear = check_fresh(run_dir, overwrite=overwrite)
    seed_everything(c.seed)
    data = run_problems(c)
    verifier = build_verifier(c)
    policy = build_policy(c)
    policy.tokenizer.padding_side = "left"
    trainer, replay = _build_trainer(c, policy, data, verifier, run_dir)
    run = _TRLRun(c, trainer, policy, data, verifier, replay, on_step=on_step, stop=stop)
    open_run_dir(run_dir, dump_config(c), clear=bool(to_clear))
    run.open_logs()
    trainer.add_callback(run.callback())
    trainer.remove_callback(PrinterCallback)  # TRL's log dicts on stdout; metrics.jsonl has what a run reports
    status = "failed"
    try:
        if c.eval.before and run.held_out:
            run.evaluate(0)
        run.clock["last"] = time.perf_counter()
        with _quiet_deprecations():
            trainer.train()
        status = "finished"
    finally:
        summary = run.close(status)
    return summary


def grpo_config(c: RunConfig, policy, run_dir: Path):
    """TRL's ``GRPOConfig`` for run config ``c``: one priorl step is one TRL generation of ``updates_per_step``
    optimizer steps (see :data:`ENGINE_NOTE` for what maps and what does not)."""
    import torch
    from trl import GRPOConfig

    t, g = c.train, c.generation
    rows = t.batch_size * g.group_size
    spg = t.updates_per_step
    return GRPOConfig(
        output_dir=str(run_dir / "trl"),
        per_device_train_batch_size=rows // spg,
        steps_per_generation=spg,
        num_generations=g.group_size,
        max_completion_length=g.max_new_tokens,
        temperature=g.temperature,
        max_steps=generations(c) * spg,
        learning_rate=t.lr,
        lr_scheduler_type="constant_with_warmup" if t.lr_warmup_steps else "constant",
        warmup_steps=t.lr_warmup_steps * spg,
        weight_decay=t.weight_decay,
        adam_beta1=t.betas[0],
        adam_beta2=t.betas[1],
        max_grad_norm=t.grad_clip if t.grad_clip is not None else 0.0,
        epsilon=t.eps_low,
        epsilon_high=t.eps_high,
        delta=t.dual_clip,
        beta=t.kl_beta,
        scale_rewards="group" if t.advantage_scale == "group" else "none",
        loss_type="dapo",
        logging_steps=spg,
        save_strategy="no",
        report_to="none",
        use_cpu=str(c.model.device) == "cpu" or not torch.cuda.is_available(),
        # model.precision bf16-mixed: TRL's (accelerate's) bf16 autocast over float32 weights and AdamW state.
        bf16=policy.precision.mixed,
        seed=c.seed,
        data_seed=c.seed,
        disable_tqdm=True,
    )


def _build_trainer(c: RunConfig, policy, data, verifier, run_dir: Path):
    """(TRL trainer, replay buffer or None): TRL's own GRPOTrainer when the run uses no priorl part, else
    :class:`~priorl.integrations.trl.PriorlGRPOTrainer` with the run's sampler and replay."""
    from datasets import Dataset
    from trl import GRPOTrainer

    from priorl.grpo.parts import build_replay, build_sampler
    from priorl.integrations.trl import PriorlGRPOTrainer

    prompts = [policy.formatter.render(p.prompt) for p in data.train]
    dataset = Dataset.from_dict({"prompt": prompts, "answer": [p.answer for p in data.train]})
    args = grpo_config(c, policy, run_dir)

    def reward(completions, answer, **kwargs):
        return [float(r) for r in verifier.score_batch(list(completions), list(answer)).rewards]

    common = dict(
        model=policy.model, reward_funcs=reward, args=args, train_dataset=dataset, processing_class=policy.tokenizer
    )
    sampler = None if c.sampler.kind == "uniform" else build_sampler(c, len(data.train), [p.level for p in data.train])
    replay = build_replay(c)
    with _quiet_deprecations():
        if sampler is None and replay is None:
            return GRPOTrainer(**common), None
        return PriorlGRPOTrainer(**common, sampler=sampler, replay=replay), replay


class _TRLRun:
    """One TRL run's bookkeeping in priorl's run directory: held-out evaluations on priorl's schedule, each
    generation's metrics (what it generated and trained, counted around TRL's generate-and-score), the summary."""

    def __init__(self, c: RunConfig, trainer, policy, data, verifier, replay, *, on_step, stop) -> None:
        from priorl.generation import HFGenerator

        self.c, self.trainer, self.policy, self.data, self.verifier, self.replay = (
            c,
            trainer,
            policy,
            data,
            verifier,
            replay,
        )
        self.on_step, self.stop = on_step, stop
        g = c.generation
        self.rows, self.spg, self.total = c.train.batch_size * g.group_size, c.train.updates_per_step, generations(c)
        self.held_out = [dataclasses.replace(p, prompt=policy.formatter.render(p.prompt)) for p in data.test]
        self.generator = HFGenerator(
            policy.model, policy.tokenizer, max_new_tokens=c.eval.max_new_tokens or g.max_new_tokens,
            batch_size=c.eval.sequences_per_call or g.sequences_per_call, encode=self.encode,
            autocast=policy.precision.autocast,  # evaluation under the run's precision, as in priorl's trainer
        )  # fmt: skip
        self.counters = {"rollouts_generated": 0, "tokens_generated": 0}
        self.pending: dict = {}
        self.clock = {"start": time.perf_counter(), "eval": 0.0, "last": time.perf_counter()}
        self.evals: list[dict] = []
        self.inner = trainer._generate_and_score_completions  # TRL's own method, wrapped to count
        trainer._generate_and_score_completions = self.counting

    def encode(self, texts):
        """The ids TRL generates from and trains on."""
        return [[int(i) for i in ids] for ids in self.trainer._tokenize_prompts(list(texts))[0]]

    def open_logs(self) -> None:
        from priorl.grpo.schedule import Schedule
        from priorl.grpo.sinks import JsonlWriter

        run_dir = Path(self.c.out_dir)
        self.metrics_log, self.eval_log = JsonlWriter(run_dir / "metrics.jsonl"), JsonlWriter(run_dir / "eval.jsonl")
        self.schedule = Schedule(self.c)

    def evaluate(self, step: int) -> None:
        import torch

        from priorl.eval import evaluate_held_out
        from priorl.grpo.checkpoint import capture_rng, restore_rng

        c, model = self.c, self.policy.model
        t0 = time.perf_counter()
        rng = capture_rng()
        was_training = model.training
        model.eval()
        try:
            torch.manual_seed((c.seed * 1_000_003 + step) % 2**63)
            result = evaluate_held_out(
                self.generator, self.held_out, self.verifier, samples=0, max_new_tokens=c.eval.max_new_tokens,
                batch_size=c.eval.sequences_per_call or c.generation.sequences_per_call, examples=0,
            )  # fmt: skip
        finally:
            restore_rng(*rng)
            model.train(was_training)
        result.pop("examples", None)
        result["rollouts_generated"] = self.counters["rollouts_generated"]
        self.eval_log.write({"step": step, **result})
        self.evals.append({"step": step, **result})
        self.clock["eval"] += time.perf_counter() - t0

    def counting(self, inputs):
        """TRL's generate-and-score, noting what each training generation makes and trains (fresh rows first,
        then replayed)."""
        out = self.inner(inputs)
        if self.trainer.model.training:
            n_fresh = len(inputs)
            mask = out["completion_mask"]
            adv = out["advantages"][:n_fresh].detach().float().cpu().numpy().reshape(-1, self.c.generation.group_size)
            self.pending.update(
                n_fresh=n_fresh, n_replayed=int(mask.shape[0]) - n_fresh,
                tokens_generated=int(mask[:n_fresh].sum()), tokens_trained=int(mask.sum()),
                informative_fraction=float(np.mean(np.abs(adv).max(axis=1) > 0)),
            )  # fmt: skip
        return out

    def callback(self):
        """A TrainerCallback that hands TRL's logs and step ends to this run."""
        from transformers import TrainerCallback

        run = self

        class Log(TrainerCallback):
            def on_log(self, _args, state, control, logs=None, **kwargs):
                if logs and "reward" in logs:
                    run.pending["reward_mean"] = float(logs["reward"])

            def on_step_end(self, _args, state, control, **kwargs):
                if state.global_step % run.spg == 0:
                    run.generation_end(state.global_step // run.spg)

        return Log()

    def generation_end(self, step: int) -> None:
        """After a training generation: its metrics, an evaluation when due, a stop when asked."""
        c, pending, rows, trainer = self.c, self.pending, self.rows, self.trainer
        now = time.perf_counter()
        before = self.counters["rollouts_generated"]
        self.counters["rollouts_generated"] += pending.get("n_fresh", rows)
        self.counters["tokens_generated"] += pending.get("tokens_generated", 0)
        record = {
            "step": step, **self.counters,
            "n_fresh": pending.get("n_fresh", rows), "n_replayed": pending.get("n_replayed", 0),
            "rows_trained": pending.get("n_fresh", rows) + pending.get("n_replayed", 0),
            "tokens_trained": pending.get("tokens_trained", 0),
            "informative_fraction": pending.get("informative_fraction", 0.0),
            "reward_mean": pending.get("reward_mean"), "updates": self.spg,
            "lr": trainer.lr_scheduler.get_last_lr()[0] if trainer.lr_scheduler is not None else c.train.lr,
            "time/step": now - self.clock["last"],
        }  # fmt: skip
        if self.replay is not None:
            record.update({f"replay/{k}": v for k, v in self.replay.metrics().items()})
        self.metrics_log.write(record)
        if self.on_step is not None:
            self.on_step(step, record)
        last = step >= self.total
        if self.schedule.eval_due(step, before, self.counters["rollouts_generated"]) and not (last and c.eval.after):
            self.evaluate(step)
        if last and c.eval.after:
            self.evaluate(step)
        self.clock["last"] = time.perf_counter()
        if not last and self.stop is not None and self.stop():
            raise EngineStopped(step)

    def close(self, status: str) -> dict:
        """Close the logs and the verifier; the run's summary (written to summary.json when it finished)."""
        import trl

        from priorl import __version__
        from priorl.precision import machine_record
        from priorl.statefile import write_atomic

        run_dir = Path(self.c.out_dir)
        self.metrics_log.close()
        self.eval_log.close()
        self.verifier.close()
        wall = time.perf_counter() - self.clock["start"]
        evals, precision = self.evals, self.policy.precision
        summary = {
            "status": status, "engine": "trl", "trl_version": trl.__version__, "priorl_version": __version__,
            "note": ENGINE_NOTE, "held_out": self.data.held_out, "steps": len(_lines(run_dir / "metrics.jsonl")),
            "rollouts_generated": self.counters["rollouts_generated"], "wall_seconds": wall,
            "train_seconds": wall - self.clock["eval"], "eval_seconds": self.clock["eval"],
            "before": evals[0] if evals and evals[0]["step"] == 0 else None,
            "after": evals[-1] if status == "finished" and evals else None,
            "precision": precision.name, "machine": machine_record(precision),
        }  # fmt: skip
        if status == "finished":
            write_atomic(run_dir / "summary.json", _dumps(summary))
        return summary


@contextlib.contextmanager
def _quiet_deprecations():
    """TRL 1.16 calls transformers' gradient_checkpointing names that transformers 5 deprecates: a FutureWarning
    per run that the user cannot act on. Silenced here only (the warnings filter is restored after)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=r".*(is_)?gradient_checkpointing.*")
        yield


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.is_file() else []


def _dumps(obj) -> bytes:
    import json

    return (json.dumps(obj, indent=2, default=float) + "\n").encode()
