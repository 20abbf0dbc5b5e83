"""Rollout replay inside TRL's GRPOTrainer (PriorlGRPOTrainer(replay=...)): real TRL classes, CPU, tiny model."""

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
from priorl.integrations.trl import PriorlGRPOTrainer  # noqa: E402
from priorl.integrations.trl_replay import (  # noqa: E402
    TRL_ROW_CODEC,
    TrlRow,
    check_batch_keys,
    replay_count,
)
from priorl.models import load_policy, load_tokenizer  # noqa: E402
from priorl.replay import AdvReplayBuffer  # noqa: E402
from priorl.sampling import PrioritizedSampler  # noqa: E402

N_PROBLEMS = 24
G = 4


def _dataset(n=N_PROBLEMS, offset=0):
    problems = load_problems("builtin:arithmetic")[offset : offset + n]
    return datasets.Dataset.from_dict({"prompt": [p.prompt for p in problems], "answer": [p.answer for p in problems]})


def half_right(completions, answer, **kwargs):
    """A reward that gives every group a non-zero variance: 1 for even-length completions, else 0 (plus exact match)."""
    return [1.0 if (c.strip() == a or len(c) % 2 == 0) else 0.0 for c, a in zip(completions, answer, strict=True)]


class Recorder(PriorlGRPOTrainer):
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
                kl = torch.exp(ref - logps) - (ref - logps) - 1
                if self.args.use_bias_correction_kl:  # TRL 1.16's default: the KL weighted by the ratio
                    kl = kl * ratio
                per_token = per_token + self.beta * kl
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


def alternating(completions, **kwargs):
    """1, 0, 1, 0, ...: every group of 4 has a non-zero reward variance."""
    return [float(i % 2 == 0) for i in range(len(completions))]


def _trainer(
    tmp_path,
    *,
    max_steps,
    kind=Recorder,
    replay=None,
    sampler=True,
    save_steps=100,
    args=None,
    reward=half_right,
    **kwargs,
):
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
        replay = AdvReplayBuffer(replay_ratio=0.5, tau_max=3, warmup_steps=1, seed=0)
    return kind(
        model=model,
        reward_funcs=reward,
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


@pytest.mark.parametrize("loss_type", ["grpo", "dapo"])
def test_loss_with_replayed_rows_matches_hand_computation(tmp_path, loss_type):
    trainer = _trainer(tmp_path, max_steps=3, kind=LossChecker, args={"loss_type": loss_type})
    trainer.train()
    assert len(trainer.checks) == 3  # one micro-step per generation
    for check in trainer.checks:
        assert check["loss"] == pytest.approx(check["hand"], rel=1e-5, abs=1e-7)
    for check in trainer.checks:  # the first (only) update on each generation
        fresh = [d for d, r in zip(check["max_ratio_dev"], check["replayed"], strict=True) if not r]
        replayed = [d for d, r in zip(check["max_ratio_dev"], check["replayed"], strict=True) if r]
        assert max(fresh) < 1e-4  # a fresh row's first-step ratio is ~1
        assert all(d > 1e-3 for d in replayed)  # a replayed row's ratio is against its (older) behaviour policy
    assert sum(sum(c["replayed"]) for c in trainer.checks) == 8


@pytest.mark.parametrize(
    "setting",
    [
        {"num_iterations": 2},
        {"steps_per_generation": 2, "gradient_accumulation_steps": 1, "per_device_train_batch_size": 4},
        {"beta": 0.1},
    ],
    ids=["num_iterations=2", "steps_per_generation=2,grad_accum=1", "beta=0.1"],
)
def test_trl_settings_that_work_with_replay(tmp_path, setting):
    trainer = _trainer(tmp_path, max_steps=4, kind=LossChecker, args=setting)
    trainer.train()
    _check_replayed_rows_are_stored_ones(trainer)  # incl. ref log-probs with beta > 0
    spg, iters = trainer.args.steps_per_generation, trainer.num_iterations
    assert len(trainer.generations) == 4 // (spg * iters // trainer.args.gradient_accumulation_steps)
    per_micro = trainer.args.per_device_train_batch_size
    for g, batch in enumerate(trainer.generations):
        k = len(trainer.draws[g])
        assert k % spg == 0 and (g < 1 or k == round(0.5 * per_micro) * spg)
        assert batch["completion_ids"].shape[0] == _n_fresh(trainer) + k
    for check in trainer.checks:
        assert check["loss"] == pytest.approx(check["hand"], rel=1e-5, abs=1e-7)
        assert len(check["replayed"]) in (per_micro, per_micro + round(0.5 * per_micro))  # equal slices, no remainder
    if setting.get("beta"):
        assert all("ref_per_token_logps" in r.fields for d in trainer.draws for r in d)
    if iters == 2:  # the second pass over a generation: replayed rows still against their stored old log-probs
        assert any(sum(c["replayed"]) for c in trainer.checks[1::2])


def test_sync_ref_model_with_beta_is_refused(tmp_path):
    with pytest.raises(ValueError, match="sync_ref_model=True is refused"):
        _trainer(tmp_path, max_steps=1, args={"beta": 0.1, "sync_ref_model": True})


def test_ratio_rounding_to_no_row_is_refused(tmp_path):
    with pytest.raises(ValueError, match="rounds to no replayed row"):
        _trainer(tmp_path, max_steps=1, replay=AdvReplayBuffer(replay_ratio=0.05, warmup_steps=0))


def test_eviction_warmup_zero_advantage_and_eval(tmp_path):
    replay = AdvReplayBuffer(replay_ratio=0.5, tau_max=1, warmup_steps=2, seed=0)
    trainer = _trainer(
        tmp_path,
        max_steps=6,
        replay=replay,
        eval_dataset=_dataset(2, offset=100),
        args={"eval_strategy": "steps", "eval_steps": 6, "per_device_eval_batch_size": 8},
    )
    trainer.train()
    assert [len(d) for d in trainer.draws][:2] == [0, 0]  # warm-up: 2 generations without replay
    assert all(len(d) <= 4 for d in trainer.draws) and sum(len(d) for d in trainer.draws[2:]) > 0
    for g, draw in enumerate(trainer.draws):
        assert all(g - r.step <= 1 for r in draw)  # tau_max 1
    assert replay.metrics()["evicted_age"] > 0
    assert all(r.advantage != 0.0 for r in replay.stored())
    zero = sum(int((b["advantages"][: _n_fresh(trainer)] == 0).sum()) for b in trainer.generations)
    assert zero > 0 and replay.metrics()["skipped_zero_advantage"] == zero  # never stored, counted
    assert all(r.step >= len(trainer.generations) - 2 for r in replay.stored())
    # eval: TRL's own batches, nothing replayed into them, nothing from them stored
    assert trainer.eval_batches and all("priorl_replayed" not in b for b in trainer.eval_batches)
    assert replay.metrics()["added"] + zero == 6 * _n_fresh(trainer) - trainer._priorl_skipped_empty
    assert replay.metrics()["size"] == len(replay.stored())


def _draw_keys(trainer):
    return [[(r.problem_id, r.step, r.row, r.advantage, r.completion_ids.tolist()) for r in d] for d in trainer.draws]


def test_resume_replays_the_same_rows(tmp_path):
    full = _trainer(tmp_path / "a", max_steps=4, save_steps=2)
    full.train()
    ckpt = tmp_path / "a" / "out" / "checkpoint-2"
    saved = json.loads((ckpt / "priorl_replay.json").read_text())
    assert saved["generation"] == 2 and (ckpt / "priorl_replay.safetensors").exists()
    resumed = _trainer(tmp_path / "b", max_steps=4, save_steps=2)
    resumed.train(resume_from_checkpoint=str(ckpt))
    assert resumed.priorl_generation == full.priorl_generation == 4
    after = _draw_keys(resumed)
    assert len(after) == 2 and after[0] and after[1]
    # The first draw comes from the restored buffer, its RNG and counter; the second also from the completions
    # sampled after the resume (the adapter restores the checkpoint's torch RNG, which transformers skips with
    # ignore_data_skip=True).
    assert after == _draw_keys(full)[2:]
    fresh = lambda t: [g["completion_ids"][: _n_fresh(t)].tolist() for g in t.generations]  # noqa: E731
    assert fresh(resumed) == fresh(full)[2:]


def test_resume_without_replay_state_is_an_error(tmp_path):
    full = _trainer(tmp_path / "a", max_steps=2, save_steps=2)
    full.train()
    ckpt = tmp_path / "a" / "out" / "checkpoint-2"
    for f in ckpt.glob("priorl_replay.*"):
        f.unlink()
    resumed = _trainer(tmp_path / "b", max_steps=3, save_steps=2)
    with pytest.raises(FileNotFoundError, match="priorl_replay.json"):
        resumed.train(resume_from_checkpoint=str(ckpt))


def test_replay_without_priorl_sampler(tmp_path):
    trainer = _trainer(tmp_path, max_steps=3, sampler=False, reward=alternating)
    assert trainer.priorl_sampler is None and trainer.priorl_feed is None
    trainer.train()
    assert [len(d) for d in trainer.draws] == [0, 4, 4]
    _check_replayed_rows_are_stored_ones(trainer)


def test_unknown_batch_keys_are_named():
    batch = {
        "prompt_ids": torch.zeros(2, 3, dtype=torch.long),
        "prompt_mask": torch.ones(2, 3, dtype=torch.long),
        "completion_ids": torch.zeros(2, 4, dtype=torch.long),
        "completion_mask": torch.ones(2, 4, dtype=torch.long),
        "advantages": torch.ones(2),
        "num_items_in_batch": torch.tensor(8),
    }
    check_batch_keys(batch)
    for key in ("pixel_values", "image_grid_thw", "num_images", "old_logps_renamed"):
        with pytest.raises(ValueError, match=rf"cannot store the TRL batch key\(s\) \['{key}'\]"):
            check_batch_keys({**batch, key: torch.zeros(2)})
    with pytest.raises(ValueError, match="one advantage per row"):
        check_batch_keys({**batch, "advantages": torch.ones(2, 4)})


def test_replay_count_and_codec_round_trip():
    assert replay_count(0.5, fresh=16, unit=2, available=100) == 8
    assert replay_count(0.5, fresh=12, unit=4, available=100) == 8  # 6 -> nearest multiple of 4
    assert replay_count(0.5, fresh=16, unit=2, available=5) == 4  # capped to whole units in the buffer
    row = TrlRow(
        problem_id=3, step=2, row=5, advantage=-0.75,
        prompt_ids=np.array([5, 6, 7]), completion_ids=np.array([8, 9]), completion_mask=np.array([1, 1], np.int8),
        fields={"old_per_token_logps": np.array([-0.5, -1.25], np.float32),
                "importance_sampling_ratio": np.array([0.9], np.float32)},
        layouts={"old_per_token_logps": "token", "importance_sampling_ratio": "row"},
        dtypes={"completion_mask": "torch.int64", "old_per_token_logps": "torch.bfloat16"},
    )  # fmt: skip
    TRL_ROW_CODEC.check(row)
    (back,) = TRL_ROW_CODEC.from_columns(TRL_ROW_CODEC.to_columns([row]))
    assert _stored(back) == _stored(row) and back.fields["importance_sampling_ratio"].tolist() == [pytest.approx(0.9)]
    assert (back.problem_id, back.step, back.row, back.layouts, back.dtypes) == (3, 2, 5, row.layouts, row.dtypes)
    with pytest.raises(ValueError, match="old_per_token_logps has 1 values, expected 2"):
        TRL_ROW_CODEC.check(TrlRow(**{**{s: getattr(row, s) for s in TrlRow.__slots__},
                                      "fields": {"old_per_token_logps": np.zeros(1, np.float32)}}))  # fmt: skip


def test_two_processes_get_equal_rows_and_the_same_buffer(tmp_path):
    """torchrun, 2 CPU processes (gloo): same row counts per rank, disjoint slices of one draw, one buffer."""
    import socket
    import subprocess
    import sys
    from pathlib import Path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = Path(__file__).with_name("trl_two_process.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(port), str(script), str(tmp_path)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    a, b = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert a["world"] == b["world"] == 2
    assert len(a["generations"]) == len(b["generations"]) == 3
    replayed_any = False
    for x, y in zip(a["generations"], b["generations"], strict=True):
        assert x["fresh"] == y["fresh"] == 4 and x["rows"] == y["rows"]  # every rank trains on as many rows
        assert len(x["replayed"]) == len(y["replayed"]) == x["rows"] - 4
        assert x["num_items_in_batch"] == y["num_items_in_batch"] == x["local_tokens"] + y["local_tokens"]
        assert not {tuple(r) for r in x["replayed"]} & {tuple(r) for r in y["replayed"]}  # slices of one draw
        replayed_any |= bool(x["replayed"])
    assert replayed_any
    assert a["stored"] == b["stored"] and a["stored"]  # the replicated buffer: the same rows, in the same order
    assert a["weights"] == b["weights"]  # DDP kept the replicas equal with the replayed rows in the batch
