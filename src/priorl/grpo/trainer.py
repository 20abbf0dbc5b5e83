"""The GRPO trainer: one readable loop that puts the problem sampler and the rollout replay buffer to work.

One step::

    ids      = sampler.sample(B)                         # which problems (uniform or prioritized)
    rollouts = generate G completions per problem        # behavior log-probs recorded
    rewards  = verifier.score(completions, answers)      # errors and time-outs score 0, counted
    sampler.observe(ids, rewards)                        # priorities follow the new success rates
    A        = group advantages (r - mean) / (std + eps)
    batch    = replay.compose(fresh, step)               # all fresh + replayed (|A|-prioritized, age <= tau_max)
    for mini_batch in shuffle(batch).split(updates_per_step):
        one clipped policy update                        # ratio vs each rollout's behavior log-probs
    metrics, batches.jsonl, checkpoint

How it differs from textbook GRPO (DeepSeekMath):

- Token-level clipped surrogate with clip-higher (eps_low 0.2, eps_high 0.28, DAPO), optional dual-clip,
  token-mean aggregation over each mini-batch (its micro-batches add up exactly).
- ``train.updates_per_step`` optimizer steps per generation batch (verl's PPO mini-batches, TRL's
  ``steps_per_generation``): the batch is shuffled with an RNG seeded by (seed, step) and split into
  near-equal mini-batches; each rollout is used once. The old log-probs of every rollout, fresh ones too,
  are its behavior log-probs recorded at generation, so the ratio corrects for every optimizer step taken
  since (the clip acts on fresh rollouts from the second mini-batch on, on replayed ones always).
  ``behavior_logprob_gap`` checks that generation and training agree before the step's first update.
- With ``kl_beta == 0`` rollouts whose advantage is exactly 0 (all groups that are all right or all
  wrong) skip their forward and backward: their gradient is exactly zero, and their tokens stay in the
  token-mean denominator, so the update is unchanged and only the time is saved.
- No KL to a reference by default (beta 0); when beta > 0, the k3 estimator against a frozen copy.
- ``dynamic-sampling`` (DAPO) generates more groups until the batch holds B informative ones, and
  every extra completion counts in ``rollouts_generated``: comparisons are at equal generation.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from pathlib import Path

import numpy as np
import torch

from priorl.config import RunConfig, dump_config
from priorl.faults import maybe_fault
from priorl.grpo.advantages import group_advantages
from priorl.grpo.checkpoint import list_checkpoints, load_checkpoint, remove_partial_checkpoints, save_checkpoint
from priorl.grpo.loss import clipped_surrogate, sequence_logprobs
from priorl.grpo.sinks import JsonlWriter, MetricSinks, truncate_jsonl
from priorl.replay import NaiveReplayBuffer, RolloutReplayBuffer
from priorl.sampling import PrioritizedSampler, UniformSampler
from priorl.types import Rollout


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. repeated non-finite losses); the message says why."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_sampler(config: RunConfig, num_problems: int, levels: list | None = None):
    """`PrioritizedSampler` for the prioritized strategies, `UniformSampler` for the others.

    ``levels`` (one per problem, e.g. ``[p.level for p in problems]``) gives the beta estimator its
    per-level priors; None or all-None levels pool every problem.
    """
    if config.uses_prioritized_sampler:
        return PrioritizedSampler(num_problems, seed=config.seed, levels=levels, **config.sampler.model_dump())
    return UniformSampler(num_problems, seed=config.seed)


def build_replay(config: RunConfig):
    """The replay buffer of the strategy, or None."""
    kind, r = config.replay_kind, config.replay
    if kind == "adv":
        return RolloutReplayBuffer(
            tau_max=r.tau_max, replay_ratio=r.replay_ratio, alpha=r.alpha, eps=r.eps,
            warmup_steps=r.warmup_steps, capacity=r.capacity, seed=config.seed,
        )  # fmt: skip
    if kind == "naive":
        return NaiveReplayBuffer(
            replay_ratio=r.replay_ratio, warmup_steps=r.warmup_steps, capacity=r.capacity, seed=config.seed
        )
    return None


def fit_context(problems: list, tokenizer, model, config: RunConfig, encode=None) -> tuple[list, int]:
    """Apply ``data.overlong`` to prompts that leave no room for ``max_new_tokens`` in the model's context.

    Returns the problems to use (re-numbered 0..M-1 when some are dropped) and how many were dropped.
    """
    limit = getattr(model.config, "max_position_embeddings", None)
    if not problems or limit is None:
        return problems, 0
    room = limit - config.generation.max_new_tokens
    prompts = [p.prompt for p in problems]
    lengths = [len(ids) for ids in (encode(prompts) if encode else tokenizer(prompts)["input_ids"])]
    over = [i for i, n in enumerate(lengths) if n > room]
    if not over:
        return problems, 0
    first = problems[over[0]]
    if config.data.overlong == "error":
        raise ValueError(
            f"{first.source or 'problem ' + str(first.id)}: field '{config.data.prompt_key}' is {lengths[over[0]]} "
            f"tokens, more than the {room} the model's context leaves after generation.max_new_tokens "
            f"({limit} - {config.generation.max_new_tokens}); {len(over)} prompt(s) are too long. "
            "Set data.overlong=skip to drop them."
        )
    dropped = set(over)
    kept = [p for i, p in enumerate(problems) if i not in dropped]
    return [dataclasses.replace(p, id=i) for i, p in enumerate(kept)], len(over)


def select_levels(problems: list, levels: list[int], spec: str | None) -> list:
    """The problems of the given levels, re-numbered 0..M-1 (``data.levels``)."""
    kept = [dataclasses.replace(p, id=i) for i, p in enumerate(q for q in problems if q.level in levels)]
    if problems and not kept:
        raise ValueError(f"data.levels {levels}: {spec} has no problem of these levels")
    return kept


class Trainer:
    """Runs ``config`` into ``config.out_dir``; ``resume=True`` continues from its last checkpoint."""

    # Skip the forward/backward of zero-advantage rollouts when kl_beta is 0 (exact; tests turn it off to
    # compare against the full computation).
    skip_zero_advantage: bool = True

    def __init__(self, config: RunConfig, *, resume: bool = False) -> None:
        from priorl.data import PromptFormatter, load_problems
        from priorl.generation import HFGenerator
        from priorl.models import load_policy, load_tokenizer
        from priorl.rewards import make_verifier

        self.config = c = config
        self.run_dir = Path(c.out_dir)
        seed_everything(c.seed)

        # Data first: a bad dataset stops the run before anything is created on disk.
        keys = dict(prompt_key=c.data.prompt_key, answer_key=c.data.answer_key, level_key=c.data.level_key)
        self.problems = load_problems(c.data.train, **keys)
        self.test_problems = load_problems(c.data.test, **keys) if c.data.test else []
        if c.data.levels is not None:
            self.problems = select_levels(self.problems, c.data.levels, c.data.train)
            self.test_problems = select_levels(self.test_problems, c.data.levels, c.data.test)
        if c.eval.max_problems is not None:
            self.test_problems = self.test_problems[: c.eval.max_problems]
        if c.train.batch_size > len(self.problems):
            raise ValueError(f"train.batch_size {c.train.batch_size} is larger than the dataset ({len(self.problems)})")
        self.verifier = make_verifier(
            c.verifier.name, timeout_s=c.verifier.timeout_s, isolation=c.verifier.isolation, workers=c.verifier.workers
        )

        self.tokenizer = load_tokenizer(c.model)
        self.formatter = PromptFormatter(self.tokenizer, c.data.chat_template, c.data.system_prompt)
        self.model = load_policy(c.model)
        encode = self.formatter.encode
        self.problems, self.skipped_overlong = fit_context(self.problems, self.tokenizer, self.model, c, encode)
        self.test_problems, _ = fit_context(self.test_problems, self.tokenizer, self.model, c, encode)
        self.ref_model = load_policy(c.model, trainable=False) if c.train.kl_beta > 0 else None
        self.generator = HFGenerator(
            self.model, self.tokenizer, temperature=c.generation.temperature, top_p=c.generation.top_p,
            max_new_tokens=c.generation.max_new_tokens, batch_size=c.generation.batch_size,
            stop=c.generation.stop, encode=encode,
        )  # fmt: skip
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            params, lr=c.train.lr, betas=c.train.betas, weight_decay=c.train.weight_decay
        )
        warmup = c.train.warmup_steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0
        )
        self.sampler = build_sampler(c, len(self.problems), [p.level for p in self.problems])
        self.replay = build_replay(c)

        self.step = 0
        self.counters = {"rollouts_generated": 0, "tokens_generated": 0, "nonfinite_skipped": 0}
        self._nonfinite_in_a_row = 0
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.yaml").write_text(dump_config(c))
        except OSError as exc:
            raise ValueError(f"cannot write the run directory {self.run_dir}: {exc.strerror or exc}") from None
        remove_partial_checkpoints(self.run_dir)  # left by a run killed while writing a checkpoint
        if resume:
            self._resume()
        else:
            for name in ("metrics.jsonl", "batches.jsonl", "eval.jsonl"):
                (self.run_dir / name).unlink(missing_ok=True)
        self.sinks = MetricSinks(
            self.run_dir, tensorboard=c.logging.tensorboard, wandb=c.logging.wandb,
            wandb_project=c.logging.wandb_project, config=c.model_dump(mode="json"),
            purge_after=self.step if resume else None,
        )  # fmt: skip
        self.batches = JsonlWriter(self.run_dir / "batches.jsonl")
        self.evals = JsonlWriter(self.run_dir / "eval.jsonl")

    # ------------------------------------------------------------------ the loop
    def train(self, progress=None) -> dict:
        """Train to ``train.max_steps`` (or the ``train.max_rollouts`` budget); returns the held-out
        evaluations ``{"before": ..., "after": ...}``."""
        c = self.config
        results: dict = {}
        if c.eval.before and self.test_problems and self.step == 0:
            results["before"] = self.evaluate()
        try:
            while not self.finished():
                generated_before = self.counters["rollouts_generated"]
                self.step += 1
                metrics = self.train_step()
                self.sinks.write(self.step, metrics)
                maybe_fault("logged", self.step)
                if progress is not None:
                    progress(self.step, metrics)
                if self._eval_due(generated_before) and self.test_problems and not (self.finished() and c.eval.after):
                    self.evaluate()
                if c.checkpoint.every and self.step % c.checkpoint.every == 0:
                    self.save()
            self.save()
            if c.eval.after and self.test_problems:
                results["after"] = self.evaluate()
        finally:
            self.close_logs()
        return results

    def finished(self) -> bool:
        """Whether the step limit or the generation budget is reached."""
        t = self.config.train
        budget_spent = t.max_rollouts is not None and self.counters["rollouts_generated"] >= t.max_rollouts
        return self.step >= t.max_steps or budget_spent

    def _eval_due(self, generated_before: int) -> bool:
        e, now = self.config.eval, self.counters["rollouts_generated"]
        by_step = bool(e.every) and self.step % e.every == 0
        by_budget = bool(e.every_rollouts) and now // e.every_rollouts > generated_before // e.every_rollouts
        return by_step or by_budget

    def train_step(self) -> dict:
        """One GRPO step; returns its metrics."""
        c, t0 = self.config, time.perf_counter()
        timing = {"generate": 0.0, "score": 0.0, "update": 0.0}

        if c.strategy == "dynamic-sampling":
            groups, gen_stats = self._dynamic_sampling_groups(timing)
        else:
            ids = self.sampler.sample(c.train.batch_size)
            groups, gen_stats = self._rollout_groups(ids, timing)

        fresh = [r for g in groups for r in g["rollouts"] if not (c.train.drop_zero_variance and not g["informative"])]
        batch = self.replay.compose(fresh, self.step) if self.replay is not None else fresh
        replayed = batch[len(fresh) :]

        t_up = time.perf_counter()
        update_stats = self._update(batch, n_fresh=len(fresh))
        timing["update"] = time.perf_counter() - t_up

        self.batches.write(
            {
                "step": self.step,
                "problem_ids": [g["problem_id"] for g in groups],
                "rewards": [g["rewards"] for g in groups],
                "replayed": [[r.problem_id, r.step] for r in replayed],
            }
        )
        metrics = {
            **self.counters,
            **gen_stats,
            "n_fresh": len(fresh),
            "n_replayed": len(replayed),
            "mean_replay_age": float(np.mean([self.step - r.step for r in replayed])) if replayed else 0.0,
            **update_stats,
            "lr": self.scheduler.get_last_lr()[0],
            "time/generate": timing["generate"],
            "time/score": timing["score"],
            "time/update": timing["update"],
            "time/step": time.perf_counter() - t0,
        }
        metrics.update({f"sampler/{k}": v for k, v in self.sampler.metrics().items()})
        if self.replay is not None:
            metrics.update({f"replay/{k}": v for k, v in self.replay.metrics().items()})
        return metrics

    # ------------------------------------------------------------------ rollouts
    def _rollout_groups(self, ids: list[int], timing: dict) -> tuple[list[dict], dict]:
        """Generate G completions for each problem, score them, feed the sampler, make rollouts."""
        c, G = self.config, self.config.generation.group_size
        problems = [self.problems[i] for i in ids]
        t = time.perf_counter()
        out = self.generator.generate([p.prompt for p in problems], G)
        timing["generate"] += time.perf_counter() - t
        maybe_fault("generate", self.step)
        t = time.perf_counter()
        scored = self.verifier.score_batch(out.texts, [p.answer for p in problems for _ in range(G)])
        timing["score"] += time.perf_counter() - t
        rewards = np.asarray(scored.rewards, dtype=np.float64).reshape(len(ids), G)
        self.sampler.observe(ids, rewards)
        advantages = group_advantages(rewards, c.train.advantage_scale)
        self.counters["rollouts_generated"] += len(out)
        self.counters["tokens_generated"] += out.num_tokens
        groups = []
        for gi, pid in enumerate(ids):
            rollouts = [
                Rollout(
                    problem_id=pid,
                    prompt_ids=out.prompt_ids[gi * G + j],
                    completion_ids=out.completion_ids[gi * G + j],
                    behavior_logprobs=out.logprobs[gi * G + j],
                    reward=float(rewards[gi, j]),
                    advantage=float(advantages[gi, j]),
                    step=self.step,
                )
                for j in range(G)
            ]
            groups.append(
                {
                    "problem_id": pid,
                    "rewards": rewards[gi].tolist(),
                    "informative": bool(rewards[gi].max() > rewards[gi].min()),
                    "rollouts": rollouts,
                }
            )
        stats = {
            "reward_mean": float(rewards.mean()),
            "informative_fraction": float(np.mean([g["informative"] for g in groups])),
            "completion_len_mean": out.num_tokens / len(out),
            "verifier_errors": scored.errors,
            "verifier_timeouts": scored.timeouts,
            "groups_generated": len(groups),
        }
        return groups, stats

    def _dynamic_sampling_groups(self, timing: dict) -> tuple[list[dict], dict]:
        """DAPO: keep only groups with differing rewards; generate more rounds until B are kept."""
        c, B = self.config, self.config.train.batch_size
        kept: list[dict] = []
        all_groups: list[dict] = []
        totals = {"verifier_errors": 0, "verifier_timeouts": 0}
        rounds = 0
        while len(kept) < B and rounds < c.dynamic_sampling.max_rounds:
            groups, stats = self._rollout_groups(self.sampler.sample(B), timing)
            all_groups += groups
            kept += [g for g in groups if g["informative"]]
            totals["verifier_errors"] += stats["verifier_errors"]
            totals["verifier_timeouts"] += stats["verifier_timeouts"]
            rounds += 1
        rewards = np.array([g["rewards"] for g in all_groups])
        stats = {
            "reward_mean": float(rewards.mean()),
            "informative_fraction": float(np.mean([g["informative"] for g in all_groups])),
            "completion_len_mean": float(np.mean([len(r.completion_ids) for g in all_groups for r in g["rollouts"]])),
            **totals,
            "groups_generated": len(all_groups),
            "dynamic_rounds": rounds,
        }
        return kept[:B], stats

    # ------------------------------------------------------------------ the update
    def _update(self, batch: list[Rollout], *, n_fresh: int) -> dict:
        """``train.updates_per_step`` optimizer steps on ``batch`` (first ``n_fresh`` fresh, then replayed).

        The batch is shuffled with an RNG seeded by (seed, step), so a resumed run takes the same mini-batches,
        and split into near-equal mini-batches, one optimizer step each; every rollout is used once. Each
        mini-batch's loss is the token mean over its own tokens.
        """
        c = self.config
        n_updates = min(c.train.updates_per_step, len(batch))
        order = np.random.default_rng([c.seed, self.step]).permutation(len(batch))
        totals = {"loss": 0.0, "clipped": 0.0, "ratio_sum": 0.0, "ratio_max": 0.0, "kl": 0.0, "grad_norm": 0.0}
        tokens = {"trained": 0, "forwarded": 0}
        gap = {"sum": 0.0, "tokens": 0}
        updates = nonfinite = 0
        for k, rows in enumerate(np.array_split(order, n_updates) if n_updates else []):
            stats = self._minibatch_step(
                [batch[i] for i in rows], [bool(i < n_fresh) for i in rows], gap if k == 0 else None
            )
            updates += stats.pop("stepped")
            nonfinite += stats.pop("nonfinite")
            tokens["trained"] += stats.pop("tokens")
            tokens["forwarded"] += stats.pop("forwarded")
            totals["ratio_max"] = max(totals["ratio_max"], stats.pop("ratio_max"))
            for key, value in stats.items():
                totals[key] += value
        if updates:
            self.scheduler.step()  # the schedule counts training steps, not optimizer steps
        # Stop after too many training steps in a row with a non-finite loss or gradient.
        self._nonfinite_in_a_row = self._nonfinite_in_a_row + 1 if nonfinite else 0
        if self._nonfinite_in_a_row >= c.train.max_nonfinite_steps:
            self.save()
            raise TrainingError(
                f"{self._nonfinite_in_a_row} steps in a row with non-finite losses or gradients, the last at step "
                f"{self.step}; stopped with a checkpoint of the last good state in {self.run_dir / 'checkpoints'}"
            )
        T, n = max(tokens["forwarded"], 1), max(n_updates, 1)
        return {
            "loss": totals["loss"] / n,
            "clip_fraction": totals["clipped"] / T,
            "ratio_mean": totals["ratio_sum"] / T if tokens["forwarded"] else 1.0,
            "ratio_max": totals["ratio_max"] if tokens["forwarded"] else 1.0,
            "grad_norm": totals["grad_norm"] / n,
            "kl": totals["kl"] / T,
            "updates": updates,
            "tokens_trained": tokens["trained"],
            "tokens_forwarded": tokens["forwarded"],
            # Stored behavior log-probs vs this forward's, fresh rollouts of the first mini-batch, before any
            # optimizer step of the step: ~0 unless generation and training disagree (processors, dropout, dtype).
            "behavior_logprob_gap": gap["sum"] / gap["tokens"] if gap["tokens"] else 0.0,
        }

    def _minibatch_step(self, rows: list[Rollout], fresh: list[bool], gap: dict | None) -> dict:
        """Forward/backward ``rows`` in micro-batches, then one optimizer step; returns summed statistics.

        Old log-probs are each rollout's behavior log-probs, fresh ones included, so from the second mini-batch
        on the clip acts on fresh rollouts too. With ``kl_beta == 0`` a rollout whose advantage is exactly 0
        has an exactly zero gradient: its forward and backward are skipped, its tokens stay in the token-mean
        denominator, so the loss and the update are those of the full computation. ``gap`` (first mini-batch
        only) accumulates |behavior - current| over the fresh rollouts' tokens.
        """
        c = self.config
        T = sum(len(r.completion_ids) for r in rows)
        out = {"stepped": 0, "nonfinite": 0, "tokens": T, "forwarded": 0, "loss": 0.0, "clipped": 0.0, "ratio_sum": 0.0,
               "ratio_max": 0.0, "kl": 0.0, "grad_norm": 0.0}  # fmt: skip
        if T == 0:
            return out
        skip_zero = self.skip_zero_advantage and c.train.kl_beta == 0
        work = [
            (r, f)
            for r, f in zip(rows, fresh, strict=True)
            if len(r.completion_ids) and not (skip_zero and r.advantage == 0.0)
        ]
        temperature, pad = c.generation.temperature, self.generator.pad_id
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        mb = c.train.micro_batch_size
        for start in range(0, len(work), mb):
            chunk = [r for r, _ in work[start : start + mb]]
            prompts = [list(r.prompt_ids) for r in chunk]
            completions = [list(r.completion_ids) for r in chunk]
            logp, mask = sequence_logprobs(self.model, prompts, completions, temperature, pad)
            old = torch.zeros_like(logp)
            for i, r in enumerate(chunk):
                old[i, : len(r.behavior_logprobs)] = torch.as_tensor(
                    np.asarray(r.behavior_logprobs, dtype=np.float32), device=logp.device
                )
            if gap is not None:
                fresh_rows = torch.tensor([f for _, f in work[start : start + mb]], device=logp.device)
                sel = mask * fresh_rows[:, None]
                gap["sum"] += float(((logp.detach() - old).abs() * sel).sum())
                gap["tokens"] += int(sel.sum())
            adv = torch.tensor([r.advantage for r in chunk], dtype=torch.float32, device=logp.device)
            ref = None
            if self.ref_model is not None:
                with torch.no_grad():
                    ref, _ = sequence_logprobs(self.ref_model, prompts, completions, temperature, pad)
            loss_sum, stats = clipped_surrogate(
                logp, old, adv, mask, eps_low=c.train.eps_low, eps_high=c.train.eps_high,
                dual_clip=c.train.dual_clip, ref_logprobs=ref, kl_beta=c.train.kl_beta,
            )  # fmt: skip
            (loss_sum / T).backward()
            maybe_fault("update", self.step)
            out["loss"] += float(loss_sum.detach()) / T
            out["clipped"] += stats.clipped
            out["ratio_sum"] += stats.ratio_sum
            out["ratio_max"] = max(out["ratio_max"], stats.ratio_max)
            out["kl"] += stats.kl_sum
            out["forwarded"] += stats.tokens
        params = [p for p in self.model.parameters() if p.requires_grad]
        for p in params:  # nothing forwarded (all advantages 0): the full computation's gradient is exactly 0
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        max_norm = c.train.grad_clip if c.train.grad_clip is not None else float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        out["grad_norm"] = grad_norm
        if not (math.isfinite(out["loss"]) and math.isfinite(grad_norm)):
            # Skip this optimizer step and keep the last good weights (the caller counts such steps).
            self.optimizer.zero_grad(set_to_none=True)
            self.counters["nonfinite_skipped"] += 1
            out.update(grad_norm=0.0, nonfinite=1)
            return out
        self.optimizer.step()
        out["stepped"] = 1
        return out

    # ------------------------------------------------------------------ evaluation and state
    def evaluate(self) -> dict:
        """Greedy pass@1 on the held-out problems by level (and avg@k if ``eval.samples``); to eval.jsonl."""
        from priorl.eval import evaluate

        cfg = self.config.eval
        result = evaluate(
            self.generator, self.test_problems, self.verifier, max_new_tokens=cfg.max_new_tokens,
            batch_size=cfg.batch_size,
        )  # fmt: skip
        if cfg.samples > 0:
            result["sampled"] = evaluate(
                self.generator,
                self.test_problems,
                self.verifier,
                samples=cfg.samples,
                max_new_tokens=cfg.max_new_tokens,
                batch_size=cfg.batch_size,
            )
        result["rollouts_generated"] = self.counters["rollouts_generated"]
        self.evals.write({"step": self.step, **result})
        return result

    def trainer_state(self) -> dict:
        return {
            "step": self.step,
            "counters": dict(self.counters),
            "nonfinite_in_a_row": self._nonfinite_in_a_row,
        }

    def save(self) -> Path:
        """Write a checkpoint of the current step."""
        return save_checkpoint(
            self.run_dir, self.step, model=self.model, tokenizer=self.tokenizer, optimizer=self.optimizer,
            scheduler=self.scheduler, sampler=self.sampler, replay=self.replay,
            trainer_state=self.trainer_state(), keep_last=self.config.checkpoint.keep_last,
        )  # fmt: skip

    def _resume(self) -> None:
        checkpoints = list_checkpoints(self.run_dir)
        if not checkpoints:
            raise ValueError(f"{self.run_dir} has no complete checkpoint to resume from")
        state = load_checkpoint(
            checkpoints[-1], model=self.model, optimizer=self.optimizer, scheduler=self.scheduler,
            sampler=self.sampler, replay=self.replay,
        )  # fmt: skip
        self.step = int(state["step"])
        self.counters.update(state["counters"])
        self._nonfinite_in_a_row = int(state.get("nonfinite_in_a_row", 0))
        # Lines written after the checkpoint belong to steps that will run again.
        for name in ("metrics.jsonl", "batches.jsonl", "eval.jsonl"):
            truncate_jsonl(self.run_dir / name, self.step)

    def close_logs(self) -> None:
        self.sinks.close()
        self.batches.close()
        self.evals.close()

    def close(self) -> None:
        self.verifier.close()
