"""Rollout replay inside TRL's GRPOTrainer (PrioritizedGRPOTrainer(replay=...)): real TRL classes, CPU, tiny model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")

from trl import GRPOConfig  # noqa: E402

from priorl.config import ModelConfig  # noqa: E402
from priorl.data import load_problems  # noqa: E402
from priorl.integrations.trl import PrioritizedGRPOTrainer  # noqa: E402
from priorl.integrations.trl_replay import (  # noqa: E402
    TRL_ROW_CODEC,
    TrlRow,
    check_batch_keys,
    replay_count,
)
from priorl.models import load_policy, load_tokenizer  # noqa: E402
from priorl.replay import RolloutReplayBuffer  # noqa: E402
from priorl.sampling import PrioritizedSampler  # noqa: E402

N_PROBLEMS = 24
G = 4


def _dataset(n=N_PROBLEMS, offset=0):
    problems = load_problems("builtin:arithmetic")[offset : offset + n]
    return datasets.Dataset.from_dict({"prompt": [p.prompt for p in problems], "answer": [p.answer for p in problems]})


def half_right(completions, answer, **kwargs):
    """A reward that gives every group a non-zero variance: 1 for even-length completions, else 0 (plus exact match)."""
    return [1.0 if (c.strip() == a or len(c) % 2 == 0) else 0.0 for c, a in zip(completions, answer, strict=True)]


class Recorder(PrioritizedGRPOTrainer):
    """Keeps, per training generation, a CPU copy of the batch the adapter returned (fresh rows first)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.generations: list[dict] = []
        self.draws: list[list[TrlRow]] = []
        self.eval_batches: list[dict] = []
        self.checks: list[dict] = []

    def _priorl_extend(self, output, inputs):
        out = super()._priorl_extend(output, inputs)
        self.generations.append({k: (v.detach().cpu().clone() if torch.is_tensor(v) else v) for k, v in out.items()})
        self.draws.append(list(self.priorl_last_draw))
        return out

    def _generate_and_score_completions(self, inputs):
        out = super()._generate_and_score_completions(inputs)
        if not self.model.training:
            self.eval_batches.append(out)
        return out


class LossChecker(Recorder):
    """Recomputes TRL's loss by hand on every micro-batch and records per-row ratios at the first micro-step."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        with torch.no_grad():
            ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
            am = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
            logps, _, _ = self._get_per_token_logps_and_entropies(model, ids, am, inputs["completion_ids"].size(1))
            mask = inputs["completion_mask"].float()
            ratio = torch.exp(logps - inputs["old_per_token_logps"])
            adv = inputs["advantages"].unsqueeze(1)
            clipped = torch.clamp(ratio, 1 - self.epsilon_low, 1 + self.epsilon_high)
            per_token = -torch.min(ratio * adv, clipped * adv)
            if self.beta != 0.0:
                ref = inputs["ref_per_token_logps"]
                per_token = per_token + self.beta * (torch.exp(ref - logps) - (ref - logps) - 1)
            ga, spg = self.current_gradient_accumulation_steps, self.args.steps_per_generation
            if self.loss_type == "grpo":
                hand = ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean() / ga
            elif self.loss_type == "dapo":
                norm = inputs["num_items_in_batch"].clamp(min=1.0) / self.accelerator.num_processes * ga / spg
                hand = (per_token * mask).sum() / norm
            else:
                raise AssertionError(self.loss_type)
            seq_dev = (((ratio - 1).abs() * mask).amax(dim=1)).tolist()
            self.checks.append(
                {
                    "loss": float(loss.detach()),
                    "hand": float(hand),
                    "replayed": inputs["priorl_replayed"].tolist(),
                    "age": inputs["priorl_age"].tolist(),
                    "max_ratio_dev": seq_dev,
                }
            )
        return loss


def _trainer(tmp_path, *, max_steps, kind=Recorder, replay=None, sampler=True, save_steps=100, args=None, **kwargs):
    tok = load_tokenizer(ModelConfig(path="builtin:tiny-arith"))
    tok.padding_side = "left"
    model = load_policy(ModelConfig(path="builtin:tiny-arith", device="cpu", dtype="float32"))
    config = dict(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=8,  # 8 completions per micro-step = 2 problems x G=4
        num_generations=G,
        max_completion_length=6,
        max_steps=max_steps,
        learning_rate=1e-3,
        logging_steps=1,
        save_steps=save_steps,
        save_strategy="steps",
        report_to="none",
        use_cpu=True,
        seed=0,
        temperature=1.0,
        disable_tqdm=True,
    )
    config.update(args or {})
    if replay is None:
        replay = RolloutReplayBuffer(replay_ratio=0.5, tau_max=3, warmup_steps=1, seed=0)
    return kind(
        model=model,
        reward_funcs=half_right,
        args=GRPOConfig(**config),
        train_dataset=_dataset(),
        processing_class=tok,
        sampler=PrioritizedSampler(N_PROBLEMS, seed=0) if sampler else None,
        replay=replay,
        **kwargs,
    )


def _row_of(batch: dict, i: int) -> dict:
    """Row ``i`` of a recorded batch, unpadded: prompt, completion, mask, advantage, per-token fields."""
    p = batch["prompt_ids"][i][batch["prompt_mask"][i] != 0]
    cm = batch["completion_mask"][i]
    n = int(torch.nonzero(cm).max()) + 1
    out = {"prompt": p.tolist(), "completion": batch["completion_ids"][i, :n].tolist(), "mask": cm[:n].tolist()}
    out["advantage"] = float(batch["advantages"][i])
    for key in ("old_per_token_logps", "ref_per_token_logps"):
        if key in batch:
            out[key] = batch[key][i, :n].tolist()
    return out


def _stored(row: TrlRow) -> dict:
    out = {
        "prompt": row.prompt_ids.tolist(),
        "completion": row.completion_ids.tolist(),
        "mask": row.completion_mask.tolist(),
        "advantage": row.advantage,
    }
    for key in ("old_per_token_logps", "ref_per_token_logps"):
        if key in row.fields:
            out[key] = row.fields[key].astype(np.float32).tolist()
    return out


def _n_fresh(trainer) -> int:
    return trainer.args.per_device_train_batch_size * trainer.args.steps_per_generation


def _check_replayed_rows_are_stored_ones(trainer):
    """Every replayed row equals the row its birth generation produced, and the split lost no row."""
    B = _n_fresh(trainer)
    for g, (batch, draw) in enumerate(zip(trainer.generations, trainer.draws, strict=True)):
        rows = batch["completion_ids"].shape[0]
        assert rows == B + len(draw)
        assert batch["priorl_replayed"][:B].sum() == 0 and batch["priorl_replayed"][B:].all()
        for j, r in enumerate(draw):
            assert 0 < g - r.step <= trainer.priorl_replay.tau_max
            assert batch["priorl_age"][B + j] == g - r.step
            born = _row_of(trainer.generations[r.step], r.row)  # the fresh row as TRL produced it
            assert _row_of(batch, B + j) == born == _stored(r)


# ---------------------------------------------------------------------------------------------------- tests


def test_generation_holds_fresh_and_replayed_rows(tmp_path):
    trainer = _trainer(tmp_path, max_steps=3)
    trainer.train()
    assert [len(d) for d in trainer.draws] == [0, 4, 4]  # warm-up 1, then round(0.5 * 8) rows
    _check_replayed_rows_are_stored_ones(trainer)
    # TRL's split of the last generation: one slice (steps_per_generation 1), every row of the batch in it
    (slice_,) = trainer._buffered_inputs
    last = trainer.generations[-1]
    assert slice_["completion_ids"].shape[0] == 12
    key = lambda b, i: (tuple(b["prompt_ids"][i].tolist()), tuple(b["completion_ids"][i].tolist()))  # noqa: E731
    assert sorted(key(slice_, i) for i in range(12)) == sorted(key(last, i) for i in range(12))
    mask = slice_["completion_mask"]
    assert int(slice_["num_items_in_batch"]) == int(mask.sum())  # recomputed over fresh + replayed rows
    logs = [h for h in trainer.state.log_history if "priorl/replay/replayed" in h]
    assert [h["priorl/replay/replayed"] for h in logs] == [0.0, 4.0, 4.0]
    assert all("priorl/replay/size" in h and "priorl/replay/evicted_age" in h for h in logs)
    assert logs[-1]["priorl/replay/replayed_mean_age"] > 0
