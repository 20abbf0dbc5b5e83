"""Group advantages and the clipped token-level objective."""

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from priorl.grpo.advantages import group_advantages
from priorl.grpo.loss import clipped_surrogate, sequence_logprobs


def tiny_model(seed=0):
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=20, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=4, max_position_embeddings=64, bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )  # fmt: skip
    return LlamaForCausalLM(cfg)


def test_advantages_group_and_none():
    r = np.array([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0], [0.1, 0.1, 0.1, 0.1]])
    a = group_advantages(r, "none")
    assert a[0].tolist() == [0.5, -0.5, -0.5, 0.5]
    assert (a[1:] == 0.0).all()  # zero-variance groups: exactly zero, even for 0.1s
    g = group_advantages(r, "group")
    assert g[0] == pytest.approx(np.array([0.5, -0.5, -0.5, 0.5]) / np.std([1, 0, 0, 1], ddof=1), rel=1e-5)
    assert (g[1:] == 0.0).all()
    with pytest.raises(ValueError):
        group_advantages(r, "batch")


def test_ratio_is_exactly_one_for_fresh_rollouts_and_gradient_is_the_policy_gradient():
    model = tiny_model()
    prompts = [[1, 5, 6], [1, 7], [1, 8, 9, 10]]
    completions = [[11, 12, 2], [13, 2], [14]]
    logp, mask = sequence_logprobs(model, prompts, completions, 1.0, 0)
    adv = torch.tensor([1.0, -1.0, 0.5])
    loss, stats = clipped_surrogate(logp, logp.detach(), adv, mask)
    assert stats.ratio_sum == stats.tokens == 6 and stats.ratio_max == 1.0 and stats.clipped == 0
    # With ratio 1 the surrogate's gradient equals the REINFORCE gradient -sum(A * grad logp).
    loss.backward()
    g1 = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    logp2, _ = sequence_logprobs(model, prompts, completions, 1.0, 0)
    (-(adv[:, None] * logp2 * mask).sum()).backward()
    for a, b in zip(g1, [p.grad for p in model.parameters()], strict=True):
        torch.testing.assert_close(a, b)


def test_sequence_logprobs_match_a_manual_per_sequence_computation():
    model = tiny_model(1)
    prompts, completions = [[1, 5, 6], [1, 7]], [[11, 12, 2], [13, 2]]
    logp, mask = sequence_logprobs(model, prompts, completions, 0.7, 0)
    for i, (p, c) in enumerate(zip(prompts, completions, strict=True)):
        ids = torch.tensor([p + c])
        logits = model(input_ids=ids).logits[0] / 0.7
        want = torch.log_softmax(logits, -1)[len(p) - 1 : len(p) - 1 + len(c)].gather(-1, torch.tensor(c)[:, None])
        torch.testing.assert_close(logp[i, : len(c)], want.squeeze(-1), rtol=1e-5, atol=1e-5)
        assert mask[i].sum() == len(c)


def test_clip_higher_and_dual_clip():
    lp = torch.log(torch.tensor([[2.0, 0.5, 1.1]]))
    old = torch.zeros_like(lp)
    mask = torch.ones_like(lp)
    pos, stats = clipped_surrogate(lp, old, torch.tensor([1.0]), mask, eps_low=0.2, eps_high=0.28)
    # A > 0: ratio 2 is clipped at 1.28; ratio 0.5 keeps -0.5 (max of -0.5 and -0.8); 1.1 unclipped.
    assert float(pos) == pytest.approx(-(1.28 + 0.5 + 1.1))
    assert stats.clipped == 1
    neg, _ = clipped_surrogate(lp, old, torch.tensor([-1.0]), mask)
    assert float(neg) == pytest.approx(2.0 + 0.8 + 1.1)
    huge = torch.log(torch.tensor([[50.0]]))
    bounded, _ = clipped_surrogate(huge, torch.zeros(1, 1), torch.tensor([-1.0]), torch.ones(1, 1), dual_clip=10.0)
    assert float(bounded) == pytest.approx(10.0)


def test_loss_falls_on_a_fixed_batch():
    model = tiny_model(2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    prompts, completions = [[1, 5, 6]] * 4, [[11, 12, 2], [13, 2], [14, 15, 2], [16, 2]]
    adv = torch.tensor([1.0, -1.0, 1.0, -1.0])
    with torch.no_grad():
        behavior, _ = sequence_logprobs(model, prompts, completions, 1.0, 0)
    losses = []
    for _ in range(15):
        logp, mask = sequence_logprobs(model, prompts, completions, 1.0, 0)
        loss, _ = clipped_surrogate(logp, behavior, adv, mask, eps_low=10.0, eps_high=10.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] - 1.0
