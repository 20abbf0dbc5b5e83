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
- ``model.precision: bf16-mixed`` keeps float32 master weights and AdamW state and runs generation, each
  micro-batch's forward (so its backward) and evaluation under bf16 autocast, one context per call; the output
  head, log-softmax and loss stay float32 (:mod:`priorl.precision`). ``train.old_logprobs: recompute`` takes
  fresh rollouts' old log-probs from a no-grad training forward in the update's own micro-batches (verl's
  choice) instead of generation's, whose token-at-a-time bf16 rounding differs from the full forward's.
- Dynamic sampling (DAPO, ``dynamic_sampling.enabled``) generates more groups until the batch holds B
  informative ones, and every extra completion counts in ``rollouts_generated``: comparisons are at equal generation.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from priorl import __version__
from priorl.config import RunConfig, check_resume_config, dump_config, load_config
from priorl.data.prepare import fit_context, run_problems
from priorl.faults import maybe_fault
from priorl.grpo.advantages import group_advantages
from priorl.grpo.checkpoint import (
    capture_rng,
    list_checkpoints,
    load_checkpoint,
    read_trainer_state,
    remove_partial_checkpoints,
    restore_rng,
    save_checkpoint,
    seed_everything,
)
from priorl.grpo.loss import clipped_surrogate, sequence_logprobs
from priorl.grpo.parts import build_replay, build_sampler, idle_parts
from priorl.grpo.progress import as_reporter, eval_summary
from priorl.grpo.rundir import (
    RunDirectoryError,
    check_fresh,
    open_run_dir,
    record_resume,
    resumed_run_info,
    start_run,
)
from priorl.grpo.schedule import Schedule, evaluated_at
from priorl.grpo.signals import AbortStep, StopSignals, TrainingInterrupted
from priorl.grpo.sinks import JsonlWriter, MetricSinks
from priorl.grpo.stack import build_generator, build_policy, build_verifier
from priorl.grpo.summary import before_after, read_jsonl, write_run_summary
from priorl.sampling.coverage import Coverage
from priorl.types import Rollout, RolloutGroup


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. repeated non-finite losses); the message says why."""


# A step whose verifier failures (errors + time-outs) reach this share of its completions gets a warning,
# at most once every VERIFIER_WARN_EVERY steps.
VERIFIER_WARN_RATE = 0.2
VERIFIER_WARN_EVERY = 50


# The statistics a mini-batch sums on the device, in this order, and reads back once (Trainer._minibatch_step).
SUMMED = ("loss", "clipped", "ratio_sum", "kl", "gap_sum", "gap_tokens", "gap_outside")


def _behavior_logprobs(chunk: list, shape: tuple, device) -> torch.Tensor:
    """The rollouts' behavior log-probs (lists, arrays or tensors) padded to ``shape`` on the host, then one
    copy to ``device``."""
    old_host = np.zeros(shape, dtype=np.float32)
    for i, r in enumerate(chunk):
        b = r.behavior_logprobs
        b = b.detach().float().cpu().numpy() if torch.is_tensor(b) else np.asarray(b, dtype=np.float32)
        old_host[i, : b.shape[0]] = b
    return torch.from_numpy(old_host).to(device)


class Trainer:
    """Runs ``config`` into ``config.out_dir``; ``resume=True`` continues from its last checkpoint."""

    # Skip the forward/backward of zero-advantage rollouts when kl_beta is 0 (exact; tests turn it off to
    # compare against the full computation).
    skip_zero_advantage: bool = True

    def __init__(
        self, config: RunConfig, *, resume: bool = False, overwrite: bool = False, allow_change: bool = True
    ) -> None:
        """Load data and model and prepare the run directory; nothing trains until :meth:`train`.

        A new run refuses a directory that holds another run (:class:`RunDirectoryError`, naming
        ``--resume`` and ``--overwrite``) unless ``overwrite``, which removes only what a run writes there.
        ``resume=True`` loads the last checkpoint, after checking it carries this directory's run id and that
        ``config`` equals the run's own config.yaml (:class:`~priorl.config.ConfigError` naming the keys
        otherwise). Changes to the keys of :data:`~priorl.config.SAFE_RESUME_CHANGES` (the step limit, the budget,
        evaluation, checkpoints, logging), which alter nothing training does, are accepted unless
        ``allow_change=False`` (``priorl train --resume`` passes False unless given ``--allow-change``).
        """
        from priorl.models import load_policy

        self.config = c = config
        self.run_dir = Path(c.out_dir)
        # Checked before anything is loaded (fast) and before anything is written (safe); cleared only once
        # the new run has loaded its data and model, so a failing new run never destroys the old one.
        to_clear = [] if resume else check_fresh(self.run_dir, overwrite=overwrite)
        if resume:
            if not (self.run_dir / "config.yaml").is_file():
                raise RunDirectoryError(f"{self.run_dir} holds no run to resume (no config.yaml)")
            saved = load_config(self.run_dir / "config.yaml")
            check_resume_config(saved, c, allow_change=allow_change, where=f"resuming {self.run_dir}")
        seed_everything(c.seed)

        # Data first: a bad dataset stops the run before anything is created on disk.
        data = run_problems(c)
        self.problems, self.test_problems, self.held_out = data.train, data.test, data.held_out
        self.verifier = build_verifier(c)

        policy = build_policy(c)  # the same builders as priorl eval's (priorl.grpo.stack)
        self.tokenizer, self.formatter, self.model = policy.tokenizer, policy.formatter, policy.model
        self.precision = policy.precision  # resolved for the device: fp32 or bf16-mixed (priorl.precision)
        # train.old_logprobs: generation's recorded log-probs, or recomputed by a training forward before the update.
        self.recompute_old_logprobs = c.train.old_logprobs == "recompute"
        self._startup_notes = list(policy.notes)  # told once when training starts (a precision fallback, dtype)
        encode = self.formatter.encode
        self.problems, self.skipped_overlong = fit_context(self.problems, self.tokenizer, self.model, c, encode)
        self.test_problems, _ = fit_context(self.test_problems, self.tokenizer, self.model, c, encode)
        self.ref_model = load_policy(c.model, trainable=False) if c.train.kl_beta > 0 else None
        if self.ref_model is not None and self.precision.mixed:
            from priorl.precision import keep_head_float32

            keep_head_float32(self.ref_model)
        self.generator = build_generator(c, policy)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            params, lr=c.train.lr, betas=c.train.betas, weight_decay=c.train.weight_decay
        )
        warmup = c.train.lr_warmup_steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0
        )
        self.sampler = build_sampler(c, len(self.problems), [p.level for p in self.problems])
        self.replay = build_replay(c)
        # Visits per problem and budget share per level, logged as coverage/* (rebuilt from batches.jsonl on resume).
        self.coverage = Coverage(len(self.problems), [p.level for p in self.problems])

        self.step = 0
        self.counters = {"rollouts_generated": 0, "tokens_generated": 0, "nonfinite_skipped": 0}
        self._next_ids: list[int] | None = None  # the next step's problems, once drawn (see _draw_problems)
        self._nonfinite_in_a_row = 0
        self.cadence = Schedule(c)  # when to evaluate and checkpoint (self.scheduler is the learning rate)
        self._eval_pending = False  # an evaluation is due at self.step and has not completed
        self._last_saved_step: int | None = None
        self._elapsed_before = 0.0  # seconds spent in train() by earlier sessions of this run
        self._session_start: float | None = None
        self.signals = StopSignals()
        self._last_verifier_warning: int | None = None
        self._reporter = as_reporter(None)
        self._last_save_time = time.monotonic()
        self.warnings: list[str] = []
        self.summary: dict | None = None  # summary.json as last written by train()
        self.cleared = open_run_dir(self.run_dir, dump_config(c), clear=bool(to_clear))  # what --overwrite removed
        remove_partial_checkpoints(self.run_dir)  # left by a run killed while writing a checkpoint
        if resume:
            self._resume()
        else:
            self.run_id = start_run(self.run_dir, __version__)
        self.sinks = MetricSinks(
            self.run_dir, tensorboard=c.logging.tensorboard, wandb=c.logging.wandb,
            wandb_project=c.logging.wandb_project, config=c.model_dump(mode="json"),
            purge_after=self.step if resume else None,
        )  # fmt: skip
        self.batches = JsonlWriter(self.run_dir / "batches.jsonl")
        self.evals = JsonlWriter(self.run_dir / "eval.jsonl")
        self.samples = JsonlWriter(self.run_dir / "samples.jsonl")

    # ------------------------------------------------------------------ the loop
    def train(self, progress=None, *, handle_signals: bool = True) -> dict:
        """Train to ``train.max_steps`` (or the ``train.max_rollouts`` budget); returns the held-out
        evaluations ``{"before": ..., "after": ...}`` (as logged in eval.jsonl, so a resumed run has both).

        ``progress``: a :class:`~priorl.grpo.progress.Reporter`, or a function ``(step, metrics)`` called
        after each step. With ``handle_signals`` (main thread only), SIGINT and SIGTERM stop the run cleanly:
        the step in flight is dropped if it has not reached its update (else it completes), a checkpoint of
        the last completed step is written, and :class:`TrainingInterrupted` is raised; a second signal
        raises ``KeyboardInterrupt`` at once. Every run ends with summary.json and progress.png.
        """
        c = self.config
        self._reporter = reporter = as_reporter(progress)
        with self.signals.handling(handle_signals), self._session(reporter):
            for message in idle_parts(c, self.expected_steps(), len(self.problems)):  # a part that would do nothing
                self._warn(message)
            for message in self._startup_notes:
                self._warn(message)
            if self.eval_pending():  # before training, or the one a stop or a kill cut short
                self._evaluate_now()
            while not self.finished():
                self._stop_if_asked()
                generated_before = self.counters["rollouts_generated"]
                metrics = self._abortable_step()
                self.sinks.write(self.step, metrics)
                maybe_fault("logged", self.step)
                self._watch_verifier(metrics, metrics["rollouts_generated"] - generated_before)
                reporter.step(self.step, metrics)
                due = self.cadence.eval_due(self.step, generated_before, self.counters["rollouts_generated"])
                due = due and not (self.finished() and c.eval.after)  # the final evaluation comes after the loop
                self._eval_pending = due and bool(self.test_problems)
                self._stop_if_asked()
                if self._eval_pending:
                    self._evaluate_now()
                if self.cadence.checkpoint_due(self.step, time.monotonic() - self._last_save_time):
                    self.save()
            self._eval_pending = c.eval.after and bool(self.test_problems) and not evaluated_at(self.run_dir, self.step)
            if self._last_saved_step != self.step:
                self.save()
            if self._eval_pending:
                self._evaluate_now()
        return self.results()

    def _abortable_step(self) -> dict:
        """:meth:`train_step`, dropped by a signal that comes before its update.

        The step up to its update changes only the sampler, the RNGs and the counters: a signal there puts these
        back and stops the run, so the checkpoint is of the last completed step.
        """
        self._draw_problems()  # fast, and outside the part a signal drops (see _snapshot)
        snapshot = self._snapshot()
        try:
            with self.signals.abortable():
                self.step += 1
                return self.train_step()
        except AbortStep:
            self._restore(snapshot)
            self._stop_if_asked()  # raises TrainingInterrupted
            raise

    @contextmanager
    def _session(self, reporter):
        """One call of :meth:`train`: times it, and however it ends closes the logs and writes summary.json
        (status finished, interrupted or failed; none after a second signal, which stops at once)."""
        self._session_start = self._last_save_time = time.monotonic()
        status, error = "finished", None
        try:
            reporter.start(self)
            yield
        except TrainingInterrupted:
            status = "interrupted"
            raise
        except KeyboardInterrupt:  # a second signal: out at once, no summary
            status = None
            raise
        except BaseException as exc:
            status, error = "failed", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self._elapsed_before += time.monotonic() - self._session_start
            self._session_start = None
            try:
                self.close_logs()
                if status is not None:
                    self.summary = write_run_summary(self, status=status, error=error)
            finally:
                reporter.end()

    def results(self) -> dict:
        """``{"before": ..., "after": ...}``: the held-out evaluations before and after training, from eval.jsonl."""
        c = self.config
        evals = read_jsonl(self.run_dir / "eval.jsonl")
        return before_after(evals, step=self.step, before=c.eval.before, after=c.eval.after, finished=self.finished())

    def finished(self) -> bool:
        """Whether the step limit or the generation budget is reached."""
        t = self.config.train
        budget_spent = t.max_rollouts is not None and self.counters["rollouts_generated"] >= t.max_rollouts
        return self.step >= t.max_steps or budget_spent

    def expected_steps(self) -> int:
        """Steps the run will take: ``train.max_steps``, or fewer when the generation budget ends it first
        (exact for strategies that generate B x G completions a step; dynamic sampling may end sooner)."""
        t, g = self.config.train, self.config.generation
        if t.max_rollouts is None:
            return t.max_steps
        return min(t.max_steps, max(self.step, -(-t.max_rollouts // (t.batch_size * g.group_size))))

    def eval_pending(self) -> bool:
        """Whether an evaluation belongs to the current step and has not completed: the one before training at
        step 0, the final one of a finished run, or one a stop or kill interrupted (recorded in the checkpoint)."""
        c = self.config
        if not self.test_problems or evaluated_at(self.run_dir, self.step):
            return False
        if self.step == 0:
            return c.eval.before
        if self.finished():
            return c.eval.after
        return self._eval_pending

    # ------------------------------------------------------------------ stopping on a signal
    def _stop_if_asked(self) -> None:
        """After a signal: checkpoint the last completed step (unless already saved) and raise TrainingInterrupted."""
        if self.signals.signum is None:
            return
        path = None
        if self.step > 0:
            path = self.save() if self._last_saved_step != self.step else self.last_checkpoint()
        raise TrainingInterrupted(self.signals.signum, self.step, path)

    def _snapshot(self) -> dict:
        """What a step changes before its update: the step, the counters and the global RNGs, O(1) in the number
        of problems. The sampler is not in it: the step's problems are drawn before the abortable part
        (:meth:`_draw_problems`) and the sampler observes their rewards only after it, so a dropped step leaves
        the sampler as it was, with the drawn problems kept for the step that runs again. Dynamic sampling draws
        and observes between its rounds, inside the abortable part, so it alone needs the sampler undone: through
        the sampler's ``undo_mark`` / ``undo_to`` where it has them (the built-in ones: O(B) amortized, see
        :mod:`priorl.sampling.undo`), else a ``state_dict`` (O(M))."""
        snapshot = {"step": self.step, "counters": dict(self.counters), "rng": capture_rng()}
        if self.config.dynamic_sampling.enabled:
            if hasattr(self.sampler, "undo_mark") and hasattr(self.sampler, "undo_to"):
                snapshot["sampler_mark"] = self.sampler.undo_mark()
            else:
                snapshot["sampler"] = self.sampler.state_dict()
        return snapshot

    def _restore(self, snapshot: dict) -> None:
        self.step = snapshot["step"]
        if "sampler_mark" in snapshot:
            self.sampler.undo_to(snapshot["sampler_mark"])
        elif "sampler" in snapshot:
            self.sampler.load_state_dict(snapshot["sampler"])
        self.counters = dict(snapshot["counters"])
        restore_rng(*snapshot["rng"])

    def _draw_problems(self) -> list[int] | None:
        """The next step's problems, drawn once: a step a signal drops keeps them (in the checkpoint too), and
        the step that runs again uses them, so the sampler sees the same calls as in an uninterrupted run. None
        for dynamic sampling, which draws inside its rounds."""
        if self._next_ids is None and not self.config.dynamic_sampling.enabled:
            self._next_ids = self.sampler.sample(self.config.train.batch_size)
        return self._next_ids

    def _watch_verifier(self, metrics: dict, n: int) -> None:
        """Warn when many of the step's ``n`` completions failed in the verifier (they score 0, silently)."""
        bad = metrics.get("verifier_errors", 0) + metrics.get("verifier_timeouts", 0)
        if not n or bad / n < VERIFIER_WARN_RATE:
            return
        if self._last_verifier_warning is not None and self.step - self._last_verifier_warning < VERIFIER_WARN_EVERY:
            return
        self._last_verifier_warning = self.step
        self._warn(
            f"verifier {self.config.verifier.name!r} failed on {bad} of {n} completions ({bad / n:.0%}) at step "
            f"{self.step}: {metrics.get('verifier_errors', 0)} errors, {metrics.get('verifier_timeouts', 0)} "
            "time-outs. They score 0, so the run learns little; check the verifier and the answers "
            "(docs/verifiers.md)"
        )

    def _warn(self, message: str) -> None:
        """Show ``message`` through the reporter and keep it for summary.json (once: a resumed run repeats it)."""
        if len(self.warnings) < 20 and message not in self.warnings:
            self.warnings.append(message)
        self._reporter.warn(message)

    def train_step(self) -> dict:
        """One GRPO step; returns its metrics."""
        c, t0 = self.config, time.perf_counter()
        timing = {"generate": 0.0, "score": 0.0, "update": 0.0}

        if c.dynamic_sampling.enabled:
            groups, gen_stats, generated = self._dynamic_sampling_groups(timing)  # generated: every round's problems
        else:
            ids = self._draw_problems()
            groups, gen_stats = self._rollout_groups(ids, timing, observe=False)
            generated = None

        fresh = [r for g in groups for r in g.rollouts if not (c.train.drop_zero_variance and not g.informative)]
        # From here on the step changes the sampler, the replay buffer and the weights: it completes.
        self.signals.commit()
        if not c.dynamic_sampling.enabled:
            self._next_ids = None
            self.sampler.observe(ids, np.array([g.rewards for g in groups]))  # priorities follow the new rates
        batch = self.replay.compose(fresh, self.step) if self.replay is not None else fresh
        replayed = batch[len(fresh) :]

        t_up = time.perf_counter()
        update_stats = self._update(batch, n_fresh=len(fresh))
        self.generator.sync_weights()  # the next generation samples the weights this update made
        timing["update"] = time.perf_counter() - t_up

        # Coverage counts generation (a visit is a generated group), so with dynamic sampling every round's problems.
        self.coverage.observe(generated if generated is not None else [g.problem_id for g in groups])
        self.batches.write(
            {
                "step": self.step,
                "problem_ids": [g.problem_id for g in groups],
                "rewards": [g.rewards for g in groups],
                "replayed": [[r.problem_id, r.step] for r in replayed],
                **({"generated_ids": generated} if generated is not None else {}),
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
        metrics.update({f"coverage/{k}": v for k, v in self.coverage.metrics().items()})
        if self.replay is not None:
            metrics.update({f"replay/{k}": v for k, v in self.replay.metrics().items()})
        return metrics

    # ------------------------------------------------------------------ rollouts
    def _rollout_groups(self, ids: list[int], timing: dict, *, observe: bool = True) -> tuple[list[RolloutGroup], dict]:
        """Generate G completions for each problem, score them, make rollouts; feed the sampler if ``observe``."""
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
        if observe:
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
            informative = bool(rewards[gi].max() > rewards[gi].min())
            groups.append(RolloutGroup(pid, rewards[gi].tolist(), informative, rollouts))
        stats = {
            "reward_mean": float(rewards.mean()),
            "informative_fraction": float(np.mean([g.informative for g in groups])),
            "completion_len_mean": out.num_tokens / len(out),
            "verifier_errors": scored.errors,
            "verifier_timeouts": scored.timeouts,
            "groups_generated": len(groups),
        }
        return groups, stats

    def _dynamic_sampling_groups(self, timing: dict) -> tuple[list[RolloutGroup], dict, list[int]]:
        """DAPO: keep only groups with differing rewards; generate more rounds until B are kept. With
        ``informative_target`` K / ``round_size`` b (the K-of-B step): rounds of b sampler-chosen problems until K
        informative groups are in hand, all of them kept. Every generated completion is counted either way.
        Returns (kept groups, statistics, the problem ids of every round's groups, kept or not)."""
        c, d = self.config, self.config.dynamic_sampling
        B = c.train.batch_size
        K, b = d.step_shape(B)
        kept: list[RolloutGroup] = []
        all_groups: list[RolloutGroup] = []
        totals = {"verifier_errors": 0, "verifier_timeouts": 0}
        rounds = 0
        while len(kept) < K and rounds < d.max_rounds:
            groups, stats = self._rollout_groups(self.sampler.sample(b), timing)
            all_groups += groups
            kept += [g for g in groups if g.informative]
            totals["verifier_errors"] += stats["verifier_errors"]
            totals["verifier_timeouts"] += stats["verifier_timeouts"]
            rounds += 1
        rewards = np.array([g.rewards for g in all_groups])
        stats = {
            "reward_mean": float(rewards.mean()),
            "informative_fraction": float(np.mean([g.informative for g in all_groups])),
            "completion_len_mean": float(np.mean([len(r.completion_ids) for g in all_groups for r in g.rollouts])),
            **totals,
            "groups_generated": len(all_groups),
            "dynamic_rounds": rounds,
            "groups_kept": len(kept) if d.k_of_b else min(len(kept), B),
        }
        generated = [g.problem_id for g in all_groups]
        if not d.k_of_b:
            return kept[:B], stats, generated  # DAPO: a batch of B (informative groups past B are dropped)
        return kept, stats, generated

    # ------------------------------------------------------------------ the update
    def _forwarded(self, r: Rollout) -> bool:
        """Whether the update forwards ``r`` (with kl_beta 0 a zero-advantage row has zero gradient: skipped)."""
        skip_zero = self.skip_zero_advantage and self.config.train.kl_beta == 0
        return bool(len(r.completion_ids)) and not (skip_zero and r.advantage == 0.0)

    def _micro_batches(self, rows: list[Rollout], fresh: list[bool]) -> list[list[tuple[Rollout, bool]]]:
        """The micro-batches a mini-batch is forwarded in: its forwarded rows (see :meth:`_forwarded`) sorted by
        length (similar lengths pad less; a stable sort keeps it deterministic), ``train.micro_batch_size`` each.
        The update and the old log-probs' recomputation both use this, so their shapes (and so, in bf16, their
        rounding) are the same."""
        work = [(r, f) for r, f in zip(rows, fresh, strict=True) if self._forwarded(r)]
        work.sort(key=lambda rf: len(rf[0].prompt_ids) + len(rf[0].completion_ids))
        mb = self.config.train.micro_batch_size
        return [work[i : i + mb] for i in range(0, len(work), mb)]

    @torch.no_grad()
    def _recompute_old_logprobs(self, minibatches: list[tuple[list[Rollout], list[bool]]]) -> None:
        """Old log-probs from a no-grad training forward at the current weights (verl's), for every fresh rollout
        the update forwards, replacing those generation recorded (``train.old_logprobs: recompute``). Under
        bf16-mixed generation's token-at-a-time rounding and the full forward's differ (~0.3% of tokens start
        outside the clip range otherwise). Each micro-batch is the update's own (:meth:`_micro_batches`), so
        before the first optimizer step the ratio is exactly 1. Replayed rows keep their stored values; the replay
        buffer holds these same ``Rollout`` objects, so it stores the recomputed log-probs."""
        c = self.config
        temperature, pad = c.generation.temperature, self.generator.pad_id
        for rows, fresh in minibatches:
            for chunk in self._micro_batches(rows, fresh):
                if not any(f for _, f in chunk):
                    continue
                with self.precision.autocast():
                    logp, _ = sequence_logprobs(
                        self.model, [list(r.prompt_ids) for r, _ in chunk], [list(r.completion_ids) for r, _ in chunk],
                        temperature, pad,
                    )  # fmt: skip
                host = logp.float().cpu().numpy()
                for i, (r, f) in enumerate(chunk):
                    if f:
                        r.behavior_logprobs = host[i, : len(r.completion_ids)].copy()

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
        gap = {"sum": 0.0, "tokens": 0, "outside": 0.0}
        updates = nonfinite = 0
        minibatches = [
            ([batch[i] for i in rows], [bool(i < n_fresh) for i in rows])
            for rows in (np.array_split(order, n_updates) if n_updates else [])
        ]
        self.model.train()
        if self.recompute_old_logprobs:
            self._recompute_old_logprobs(minibatches)
        for k, (rows, fresh) in enumerate(minibatches):
            stats = self._minibatch_step(rows, fresh, gap if k == 0 else None)
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
            # The share of those tokens whose ratio already lies outside [1 - eps_low, 1 + eps_high] before any
            # update: what disagreement costs (bf16-mixed keeps it under 0.5%; float32 ~0).
            "behavior_clip_fraction": gap["outside"] / gap["tokens"] if gap["tokens"] else 0.0,
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
        # The mini-batch's gradient is the sum over its rows whatever their grouping into micro-batches.
        micro_batches = self._micro_batches(rows, fresh)
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        device = next(self.model.parameters()).device
        # Statistics stay on the device, summed in float64 (the float64 of the host sums they replace), and are
        # read once, with the gradient norm: one host synchronisation per mini-batch.
        acc_dtype = torch.float32 if device.type == "mps" else torch.float64
        acc = torch.zeros(len(SUMMED), dtype=acc_dtype, device=device)
        ratio_max = torch.zeros((), dtype=acc_dtype, device=device)
        for micro in micro_batches:
            step_stats, micro_max = self._micro_step(micro, T, gap is not None, acc_dtype, device)
            acc += step_stats
            ratio_max = torch.maximum(ratio_max, micro_max.to(device, acc_dtype))
            out["forwarded"] += sum(len(r.completion_ids) for r, _ in micro)  # = mask.sum(), known on the host
        params = [p for p in self.model.parameters() if p.requires_grad]
        for p in params:  # nothing forwarded (all advantages 0): the full computation's gradient is exactly 0
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        max_norm = c.train.grad_clip if c.train.grad_clip is not None else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        values = torch.cat([acc, ratio_max[None], norm.detach().to(device, acc_dtype)[None]]).tolist()  # the sync
        summed = dict(zip((*SUMMED, "ratio_max", "grad_norm"), values, strict=True))
        out.update({k: summed[k] for k in ("loss", "clipped", "ratio_sum", "kl", "ratio_max", "grad_norm")})
        if gap is not None:
            gap["sum"] += summed["gap_sum"]
            gap["tokens"] += int(summed["gap_tokens"])
            gap["outside"] += summed["gap_outside"]
        if not (math.isfinite(out["loss"]) and math.isfinite(out["grad_norm"])):
            # Skip this optimizer step and keep the last good weights (the caller counts such steps).
            self.optimizer.zero_grad(set_to_none=True)
            self.counters["nonfinite_skipped"] += 1
            out.update(grad_norm=0.0, nonfinite=1)
            return out
        self.optimizer.step()
        out["stepped"] = 1
        return out

    def _micro_step(self, micro: list[tuple[Rollout, bool]], T: int, with_gap: bool, acc_dtype, device):
        """Forward and backward one micro-batch of ``(rollout, fresh)`` (the loss over the mini-batch's ``T``
        tokens); returns its statistics as one tensor ordered as :data:`SUMMED` (the loss already divided by
        ``T``; ``acc_dtype`` on ``device``) and its largest ratio, both left on the device."""
        c = self.config
        temperature, pad = c.generation.temperature, self.generator.pad_id
        chunk = [r for r, _ in micro]
        prompts = [list(r.prompt_ids) for r in chunk]
        completions = [list(r.completion_ids) for r in chunk]
        with self.precision.autocast():  # its own context per micro-batch (bf16-mixed; a no-op in fp32)
            logp, mask = sequence_logprobs(self.model, prompts, completions, temperature, pad)
        old = _behavior_logprobs(chunk, tuple(logp.shape), logp.device)
        zero = torch.zeros((), device=logp.device)
        gap = {"gap_sum": zero, "gap_tokens": zero, "gap_outside": zero}
        if with_gap:
            fresh_rows = torch.tensor([f for _, f in micro], device=logp.device)
            sel = mask * fresh_rows[:, None]
            delta = logp.detach() - old
            gap["gap_sum"], gap["gap_tokens"] = (delta.abs() * sel).sum(), sel.sum()
            ratio = delta.exp()
            outside = (ratio < 1.0 - c.train.eps_low) | (ratio > 1.0 + c.train.eps_high)
            gap["gap_outside"] = (outside.float() * sel).sum()
        adv = torch.tensor([r.advantage for r in chunk], dtype=torch.float32, device=logp.device)
        ref = None
        if self.ref_model is not None:
            with torch.no_grad(), self.precision.autocast():
                ref, _ = sequence_logprobs(self.ref_model, prompts, completions, temperature, pad)
        loss_sum, stats = clipped_surrogate(
            logp, old, adv, mask, eps_low=c.train.eps_low, eps_high=c.train.eps_high,
            dual_clip=c.train.dual_clip, ref_logprobs=ref, kl_beta=c.train.kl_beta, sync=False,
        )  # fmt: skip
        (loss_sum / T).backward()
        maybe_fault("update", self.step)
        parts = {"loss": loss_sum.detach(), "clipped": stats.clipped, "ratio_sum": stats.ratio_sum,
                 "kl": stats.kl_sum, **gap}  # fmt: skip
        step_stats = torch.stack([parts[k].to(acc_dtype) for k in SUMMED]).to(device)
        step_stats[SUMMED.index("loss")] /= T
        return step_stats, stats.ratio_max

    # ------------------------------------------------------------------ evaluation and state
    def evaluate(self, progress=None) -> dict:
        """Greedy pass@1 on the held-out problems by level (and avg@k if ``eval.samples``); to eval.jsonl,
        TensorBoard / W&B, and ``eval.log_samples`` sample completions to samples.jsonl.

        Evaluation runs on its own random stream, seeded by (seed, step), and puts the training RNGs back
        afterwards: when and how often a run evaluates never changes its training. ``progress(done)`` gets the
        number of generation units (problems x passes) done.
        """
        from priorl.eval import evaluate_held_out

        cfg = self.config.eval
        rng = capture_rng()
        try:
            torch.manual_seed((self.config.seed * 1_000_003 + self.step) % 2**63)
            maybe_fault("eval", self.step)
            result = evaluate_held_out(
                self.generator, self.test_problems, self.verifier, samples=cfg.samples,
                max_new_tokens=cfg.max_new_tokens, batch_size=cfg.sequences_per_call, progress=progress,
                examples=cfg.log_samples,
            )  # fmt: skip
        finally:
            restore_rng(*rng)
        examples = result.pop("examples", [])
        result["rollouts_generated"] = self.counters["rollouts_generated"]
        self.evals.write({"step": self.step, **result})
        for e in examples:
            self.samples.write({"step": self.step, **e})
        self.sinks.write_eval(self.step, result)
        self.sinks.write_samples(self.step, examples)
        return result

    def _evaluate_now(self) -> dict:
        """:meth:`evaluate` for the loop: reported, interruptible (a signal drops it and stops the run)."""
        self._stop_if_asked()  # a signal that came while nothing could be dropped
        passes = 1 + (self.config.eval.samples > 0)
        self._reporter.eval_start(self.step, len(self.test_problems) * passes)
        t0 = time.monotonic()
        try:
            with self.signals.abortable():
                result = self.evaluate(progress=self._reporter.eval_advance)
        except AbortStep:
            self._stop_if_asked()  # the checkpoint records the evaluation as still due
            raise
        self._eval_pending = False
        self._reporter.eval_end(self.step, result, time.monotonic() - t0)
        failed = result["verifier_errors"] + result["verifier_timeouts"]
        if failed >= VERIFIER_WARN_RATE * result["num_problems"]:
            self._warn(
                f"verifier {self.config.verifier.name!r} failed on {failed} of {result['num_problems']} held-out "
                f"completions at step {self.step} ({result['verifier_errors']} errors, "
                f"{result['verifier_timeouts']} time-outs): the held-out accuracy ({eval_summary(result)}) "
                "counts them as wrong"
            )
        return result

    def elapsed_seconds(self) -> float:
        """Seconds this run has spent in :meth:`train`, over all its sessions (up to the last checkpoint's
        for earlier ones)."""
        now = time.monotonic() - self._session_start if self._session_start is not None else 0.0
        return self._elapsed_before + now

    def trainer_state(self) -> dict:
        return {
            "step": self.step,
            "counters": dict(self.counters),
            "nonfinite_in_a_row": self._nonfinite_in_a_row,
            "run_id": self.run_id,
            "eval_pending": self._eval_pending,
            "elapsed_s": self.elapsed_seconds(),
            "warnings": list(self.warnings),
            "next_problem_ids": self._next_ids,
        }

    def save(self) -> Path:
        """Write a checkpoint of the current step."""
        path = save_checkpoint(
            self.run_dir, self.step, model=self.model, tokenizer=self.tokenizer, optimizer=self.optimizer,
            scheduler=self.scheduler, sampler=self.sampler, replay=self.replay,
            trainer_state=self.trainer_state(), keep_last=self.config.checkpoint.keep_last,
        )  # fmt: skip
        self._last_saved_step = self.step
        self._last_save_time = time.monotonic()
        return path

    def last_checkpoint(self) -> Path | None:
        """The newest complete checkpoint of the run, or None."""
        done = list_checkpoints(self.run_dir)
        return done[-1] if done else None

    def _resume(self) -> None:
        checkpoints = list_checkpoints(self.run_dir)
        last = checkpoints[-1] if checkpoints else None
        saved = read_trainer_state(last) if last is not None else {}
        info = resumed_run_info(self.run_dir, last, saved.get("run_id"))
        self.run_id = info["run_id"]
        if checkpoints:
            state = load_checkpoint(
                checkpoints[-1], model=self.model, optimizer=self.optimizer, scheduler=self.scheduler,
                sampler=self.sampler, replay=self.replay,
            )  # fmt: skip
            self.step = int(state["step"])
            self.counters.update(state["counters"])
            self._nonfinite_in_a_row = int(state.get("nonfinite_in_a_row", 0))
            self._eval_pending = bool(state.get("eval_pending", False))
            self._elapsed_before = float(state.get("elapsed_s", 0.0))
            self.warnings = list(state.get("warnings", []))
            self._next_ids = state.get("next_problem_ids")  # drawn by a step a signal dropped
            self._last_saved_step = self.step
        # else: stopped before its first checkpoint; it starts again from step 0, exactly as it first did.
        record_resume(self.run_dir, info, self.step)
        self.coverage.replay_batches(self.run_dir / "batches.jsonl")

    def close_logs(self) -> None:
        self.sinks.close()
        self.batches.close()
        self.evals.close()
        self.samples.close()

    def close(self) -> None:
        self.verifier.close()
