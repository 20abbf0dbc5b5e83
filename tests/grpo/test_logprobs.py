"""sequence_logprobs: left padding with position ids, completion positions only, chunked, equal to a naive forward."""

import functools

import pytest
import torch

from priorl.grpo.loss import sequence_logprobs

# Fixtures `tok` (the shipped tiny-arith tokenizer) and `model` (a fresh copy of its model): tests/conftest.py.


def batch(tok):
    prompts = [tok(p)["input_ids"] for p in ("12+34=", "5+5=", "123+456=", "7*8=")]
    completions = [tok("46")["input_ids"][-2:] + [2], tok("1")["input_ids"][-1:], tok("579")["input_ids"][-3:] + [2],
                   tok("56")["input_ids"][-2:]]  # fmt: skip
    return prompts, completions


def naive(model, prompts, completions, temperature):
    """One unpadded full-logits forward per sequence."""
    rows = []
    for p, c in zip(prompts, completions, strict=True):
        logits = model(input_ids=torch.tensor([p + c])).logits[0].float() / temperature
        lp = torch.log_softmax(logits, -1)[len(p) - 1 : len(p) + len(c) - 1]
        rows.append(lp.gather(-1, torch.tensor(c)[:, None])[:, 0])
    return rows


@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_equals_a_naive_per_sequence_forward(model, tok, temperature):
    model.eval()
    prompts, completions = batch(tok)
    with torch.no_grad():
        lp, mask = sequence_logprobs(model, prompts, completions, temperature, tok.pad_token_id)
        ref = naive(model, prompts, completions, temperature)
    assert lp.shape == mask.shape == (4, 4)
    for i, r in enumerate(ref):
        assert mask[i].tolist() == [1.0] * len(r) + [0.0] * (4 - len(r))
        torch.testing.assert_close(lp[i, : len(r)], r, atol=1e-5, rtol=0)
        assert (lp[i, len(r) :] == 0).all()


def test_chunks_change_nothing_forward_or_backward(model, tok):
    prompts, completions = batch(tok)
    grads = []
    values = []
    for chunk in (1, 1 << 26):  # one position per chunk (checkpointed) vs all at once
        model.zero_grad()
        lp, mask = sequence_logprobs(model, prompts, completions, 0.7, tok.pad_token_id, chunk_elements=chunk)
        (lp * mask).sum().backward()
        values.append(lp.detach())
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    torch.testing.assert_close(values[0], values[1], atol=1e-6, rtol=0)
    torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=1e-5)
    assert torch.isfinite(grads[0]).all()  # left padding leaves no NaN in the pad positions' gradients


def test_only_completion_positions_get_logits(model, tok, monkeypatch):
    prompts, completions = batch(tok)
    seen = {}
    real = model.forward

    @functools.wraps(real)  # keeps the signature, which says whether the model takes logits_to_keep
    def spy(*args, **kwargs):
        seen["keep"] = kwargs.get("logits_to_keep")
        out = real(*args, **kwargs)
        seen["shape"] = tuple(out.logits.shape)
        return out

    monkeypatch.setattr(model, "forward", spy)
    sequence_logprobs(model, prompts, completions, 1.0, tok.pad_token_id)
    assert seen["keep"] == 5 and seen["shape"][1] == 5  # longest completion + 1, not the whole sequence


def test_empty_completions(model, tok):
    lp, mask = sequence_logprobs(model, [[1, 2], [1]], [[], []], 1.0, 0)
    assert lp.shape == mask.shape == (2, 0)
