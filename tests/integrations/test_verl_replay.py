"""Rollout replay in verl's PPO step, with verl's DataProto, GRPO advantages and policy loss (CPU)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pytest.importorskip("verl")

from verl import DataProto  # noqa: E402
from verl.trainer.ppo.core_algos import get_policy_loss_fn  # noqa: E402

from integrations.verl_helpers import CONFIG_DIR, N, ppo_batch, step_of  # noqa: E402
from priorl.integrations.verl.replay import VerlReplay, replay_count  # noqa: E402
from priorl.statefile import load_state, save_state  # noqa: E402

UNIT = 6  # rows per replay unit (e.g. ppo_mini_batch_size 2 × rollout.n 3, data-parallel size 2)
PROBLEMS = [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15]]


@pytest.fixture(scope="module")
def actor_config():
    """verl's own actor config (FSDPActorConfig) from the entry point's composed hydra config."""
    from hydra import compose, initialize_config_dir
    from verl.utils.config import omega_conf_to_dataclass

    overrides = [
        "actor_rollout_ref.actor.ppo_mini_batch_size=2",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2",
    ]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        cfg = compose("priorl_ppo_trainer", overrides=overrides)
    return omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)


def _replayed(actor_batch, step):
    """Positions of the rows of ``actor_batch`` born before ``step`` (token ids encode the birth step)."""
    return [i for i, ids in enumerate(actor_batch.batch["responses"]) if step_of(ids) != step]


def _find(batch, response_ids):
    """The row of ``batch`` with these valid response tokens."""
    n = len(response_ids)
    for i in range(len(batch)):
        if int(batch.batch["attention_mask"][i, batch.batch["prompts"].shape[1] :].sum()) == n and torch.equal(
            batch.batch["responses"][i, :n], response_ids
        ):
            return i
    raise AssertionError("row not found")


def test_replayed_rows_carry_their_stored_fields_and_the_ratio_uses_stored_logprobs(actor_config):
    replay = VerlReplay(replay_ratio=1.0, warmup_steps=1, tau_max=3, seed=0)
    first = ppo_batch(PROBLEMS[0], 1, logp=-1.0, ref=True)
    actor_batch, rows = replay.compose(first, 1, UNIT)
    assert actor_batch is first  # nothing stored yet: verl's step unchanged
    replay.store(rows)
    second = ppo_batch(PROBLEMS[1], 2, logp=-3.0, ref=True)
    actor_batch, rows = replay.compose(second, 2, UNIT)
    replayed = _replayed(actor_batch, 2)
    nonzero = sum(1 for r in replay.buffer.stored())
    assert len(replayed) == replay_count(1.0, len(second), UNIT, nonzero) > 0
    assert len(actor_batch) == len(second) + len(replayed)

    P = actor_batch.batch["prompts"].shape[1]
    policy_loss = get_policy_loss_fn("vanilla")
    current = torch.full_like(actor_batch.batch["old_log_probs"], -3.0)  # log π_θ of the updated policy
    for i in replayed:
        n = int(actor_batch.batch["attention_mask"][i, P:].sum())
        j = _find(first, actor_batch.batch["responses"][i, :n])  # the step-1 row it replays
        for key in ("old_log_probs", "ref_log_prob", "response_mask", "advantages", "prompts", "input_ids"):
            assert torch.equal(actor_batch.batch[key][i], first.batch[key][j]), key
        assert float(first.batch["advantages"][j].abs().sum()) > 0  # only non-zero advantages are stored
        # verl's vanilla PPO loss on this row: the ratio is against the stored (step-1) log-probs
        row = slice(i, i + 1)
        loss, metrics = policy_loss(
            old_log_prob=actor_batch.batch["old_log_probs"][row],
            log_prob=current[row],
            advantages=actor_batch.batch["advantages"][row],
            response_mask=actor_batch.batch["response_mask"][row],
            loss_agg_mode="token-mean",
            config=actor_config,
        )
        mask = first.batch["response_mask"][j].bool()
        stored = first.batch["old_log_probs"][j][mask].double()
        assert metrics["actor/ppo_kl"] == pytest.approx(float((stored + 3.0).mean()), rel=1e-5)
        ratio = torch.exp(-3.0 - stored)
        adv = float(first.batch["advantages"][j][mask][0])
        clipped = torch.clamp(ratio, 1 - actor_config.clip_ratio, 1 + actor_config.clip_ratio)
        expected = torch.maximum(-adv * ratio, -adv * clipped)
        if adv < 0:
            expected = torch.minimum(expected, torch.tensor(-adv * actor_config.get("clip_ratio_c", 3.0)))
        assert float(loss) == pytest.approx(float(expected.mean()), rel=1e-5)
        assert metrics["actor/ppo_kl"] > 1.0  # far from the ratio-1 a recomputed old log-prob would give


def test_ages_never_exceed_tau_max_and_rows_come_in_whole_units():
    tau_max = 2
    replay = VerlReplay(replay_ratio=0.5, warmup_steps=2, tau_max=tau_max, seed=1, capacity=200)
    replayed_any = 0
    for step in range(1, 13):
        batch = ppo_batch(PROBLEMS[step % 4], step)
        actor_batch, rows = replay.compose(batch, step, UNIT)
        ages = [step - step_of(actor_batch.batch["responses"][i]) for i in _replayed(actor_batch, step)]
        assert all(0 < age <= tau_max for age in ages)
        assert len(ages) % UNIT == 0
        if step < 2:
            assert not ages  # warmup
        assert replay.metrics()["replayed"] == len(ages)
        assert replay.metrics()["replayed_mean_age"] == (np.mean(ages) if ages else 0.0)
        assert all(step - r.step <= tau_max for r in replay.buffer.stored())
        replayed_any += len(ages)
        replay.store(rows)
    assert replayed_any > 0
    assert replay.metrics()["evicted_age"] > 0


def test_replayed_rows_are_spread_over_ranks_and_mini_batches():
    replay = VerlReplay(replay_ratio=1.0, warmup_steps=0, tau_max=4, seed=0)
    for step in (1, 2, 3):
        actor_batch, rows = replay.compose(ppo_batch(PROBLEMS[step % 4] + PROBLEMS[(step + 1) % 4], step), step, UNIT)
        replay.store(rows)
    replayed = sorted(_replayed(actor_batch, 3))
    assert len(replayed) >= UNIT
    assert len(actor_batch) % UNIT == 0
    gaps = np.diff([-1, *replayed, len(actor_batch)])
    assert gaps[1:-1].max() - gaps[1:-1].min() <= 1  # evenly spaced through the batch
    # verl's dispatch gives each data-parallel rank an equal contiguous chunk: each gets its share
    chunks = actor_batch.chunk(2)
    assert len(chunks[0]) == len(chunks[1])
    per_rank = [sum(1 for i in replayed if i < len(chunks[0])), sum(1 for i in replayed if i >= len(chunks[0]))]
    assert abs(per_rank[0] - per_rank[1]) <= 1


def test_buffer_survives_save_and_load(tmp_path):
    def run(replay, steps):
        out = []
        for step in steps:
            actor_batch, rows = replay.compose(ppo_batch(PROBLEMS[step % 4], step, ref=True), step, UNIT)
            out.append([actor_batch.batch["responses"][i].tolist() for i in _replayed(actor_batch, step)])
            replay.store(rows)
        return out

    options = {"replay_ratio": 0.5, "warmup_steps": 1, "tau_max": 3, "seed": 7, "capacity": 30}
    straight = VerlReplay(**options)
    expected = run(straight, range(1, 9))
    first = VerlReplay(**options)
    got = run(first, range(1, 5))
    save_state(tmp_path, "priorl_replay", first.state_dict())  # safetensors + JSON, no pickle
    resumed = VerlReplay(**options)
    resumed.load_state_dict(load_state(tmp_path, "priorl_replay"))
    a, b = first.buffer.stored(), resumed.buffer.stored()
    assert len(a) == len(b) > 0
    for x, y in zip(a, b, strict=True):
        assert (x.problem_id, x.step, x.advantage, x.reward, x.times_replayed) == (
            y.problem_id,
            y.step,
            y.advantage,
            y.reward,
            y.times_replayed,
        )
        assert np.array_equal(x.prompt_ids, y.prompt_ids) and np.array_equal(x.response_ids, y.response_ids)
        assert sorted(x.tokens) == sorted(y.tokens) == ["old_log_probs", "ref_log_prob", "response_mask"]
        for name in x.tokens:
            assert x.tokens[name].dtype == y.tokens[name].dtype
            assert np.array_equal(x.tokens[name], y.tokens[name])
    got += run(resumed, range(5, 9))
    assert got == expected  # the same rows replayed, in the same order, as without the interruption
    # a state of one kind of record is not loaded as another
    from priorl.replay import AdvReplayBuffer

    with pytest.raises(ValueError, match="holds 'verl-row' records, this buffer stores 'rollout' records"):
        AdvReplayBuffer(capacity=30).load_state_dict(load_state(tmp_path, "priorl_replay"))


def test_wider_stored_rows_widen_the_batch_and_nothing_is_cut():
    replay = VerlReplay(replay_ratio=1.0, warmup_steps=0, tau_max=4, seed=0)
    wide = ppo_batch(PROBLEMS[0], 1, width=(9, 7))
    _, rows = replay.compose(wide, 1, UNIT)
    replay.store(rows)
    narrow = ppo_batch(PROBLEMS[1], 2, width=(4, 3))
    actor_batch, _ = replay.compose(narrow, 2, UNIT)
    replayed = _replayed(actor_batch, 2)
    P2, R2 = actor_batch.batch["prompts"].shape[1], actor_batch.batch["responses"].shape[1]
    assert replayed and (P2 > 4 or R2 > 3)  # widened to the widest replayed row, never cut
    assert P2 <= 9 and R2 <= 7 and actor_batch.batch["input_ids"].shape[1] == P2 + R2
    # every row's valid tokens are intact, fresh and replayed alike, with positions 0 .. length-1
    attended = actor_batch.batch["attention_mask"].bool()
    sequences = [actor_batch.batch["input_ids"][i][attended[i]] for i in range(len(actor_batch))]
    positions = [actor_batch.batch["position_ids"][i][attended[i]] for i in range(len(actor_batch))]
    for i, sequence in enumerate(sequences):
        source = narrow if step_of(actor_batch.batch["responses"][i]) == 2 else wide
        n = int(actor_batch.batch["attention_mask"][i, actor_batch.batch["prompts"].shape[1] :].sum())
        j = _find(source, actor_batch.batch["responses"][i, :n])
        valid = source.batch["attention_mask"][j].bool()
        assert torch.equal(sequence, source.batch["input_ids"][j][valid])
        assert torch.equal(positions[i], torch.arange(int(valid.sum())))
        for key in ("old_log_probs", "advantages", "response_mask"):
            mine = actor_batch.batch[key][i][:n]
            assert torch.equal(mine, source.batch[key][j][:n])
            assert not actor_batch.batch[key][i][n:].any()


def test_rows_replay_cannot_rebuild_are_refused():
    replay = VerlReplay(replay_ratio=0.5)
    batch = ppo_batch(PROBLEMS[0], 1)
    per_token = batch.batch["advantages"].clone()
    per_token[:, 0] += 0.5
    gae_like = DataProto.from_dict(tensors={**batch.batch, "advantages": per_token}, non_tensors=batch.non_tensor_batch)
    row = next(i for i in range(len(batch)) if batch.batch["response_mask"][i].sum() > 1)
    with pytest.raises(ValueError, match=rf"batch row {row}: its advantage varies over its response tokens"):
        replay.compose(gae_like, 1, UNIT)

    for key, message in (("routed_experts", "MoE routing replay"), ("teacher_logprobs", "distillation")):
        extra = DataProto.from_dict(
            tensors={**batch.batch, key: torch.zeros(len(batch), 3)}, non_tensors=batch.non_tensor_batch
        )
        with pytest.raises(ValueError, match=message):
            replay.compose(extra, 1, UNIT)
    unknown = DataProto.from_dict(tensors={**batch.batch, "mystery": torch.zeros(len(batch))})
    with pytest.raises(ValueError, match=r"does not know the batch fields \['mystery'\]"):
        replay.compose(unknown, 1, UNIT)
    mrope = DataProto.from_dict(
        tensors={**batch.batch, "position_ids": batch.batch["position_ids"][:, None].repeat(1, 3, 1)}
    )
    with pytest.raises(ValueError, match="supports text models: position_ids has shape"):
        replay.compose(mrope, 1, UNIT)
    flipped = DataProto.from_dict(tensors={**batch.batch, "attention_mask": batch.batch["attention_mask"].flip(1)})
    with pytest.raises(ValueError, match="position_ids differ|not left-padded"):
        replay.compose(flipped, 1, UNIT)
    assert len(replay.buffer) == 0  # nothing stored by a refused batch
    with pytest.raises(ValueError, match="priorl.replay.ratio: not an option of replay kind 'adv-replay'"):
        VerlReplay(ratio=0.5)


def test_replay_count():
    assert replay_count(0.5, 96, 16, 1000) == 48  # 48 is 3 units
    assert replay_count(0.5, 96, 32, 1000) == 64  # 48 rows = 1.5 units, rounds to 2
    assert replay_count(0.5, 96, 32, 40) == 32  # only one whole unit stored
    assert replay_count(0.1, 96, 32, 1000) == 0  # 9.6 rows round to no unit
    assert replay_count(1.0, 96, 32, 1000) == 96
    assert math.gcd(replay_count(0.75, 96 * N, 24, 10_000), 24) == 24
