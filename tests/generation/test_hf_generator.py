"""The HF generator on the shipped tiny model: recorded log-probs are those sampled from, stopping, memory."""

import pytest
import torch

from priorl.config import ConfigError, load_config
from priorl.data import load_problems
from priorl.eval import evaluate
from priorl.generation import HFGenerator
from priorl.generation.hf import cut_completion, eos_token_ids
from priorl.grpo.loss import sequence_logprobs
from priorl.rewards import make_verifier

from .vocab_tracker import VocabTensorTracker

# Fixtures `tok` (the shipped tiny-arith tokenizer) and `model` (a fresh copy of its model): tests/conftest.py.


PROMPTS = [p.prompt for p in load_problems("builtin:arithmetic")[:12]]


def logprob_gap(model, out, temperature, pad_id) -> tuple[float, float]:
    """Mean and max |stored behavior log-prob - training forward log-prob| (train mode, float32)."""
    model.train()
    with torch.no_grad():
        lp, _ = sequence_logprobs(model, out.prompt_ids, out.completion_ids, temperature, pad_id)
    gaps = torch.cat([(lp[i, : len(b)] - torch.tensor(b)).abs() for i, b in enumerate(out.logprobs)])
    return float(gaps.mean()), float(gaps.max())


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_recorded_logprobs_match_the_training_forward(model, tok, temperature):
    torch.manual_seed(0)
    gen = HFGenerator(model, tok, temperature=temperature, max_new_tokens=8, batch_size=16)
    out = gen.generate(PROMPTS, 4)
    assert len(out) == 48 and all(len(c) == len(lp) for c, lp in zip(out.completion_ids, out.logprobs, strict=True))
    mean, worst = logprob_gap(model, out, temperature, gen.pad_id)
    assert mean < 1e-5 and worst < 1e-4


def test_model_generation_config_is_not_applied(model, tok, caplog):
    """Settings in the model's generation_config (repetition penalty, top-k, ...) would change what is sampled."""
    gc = model.generation_config
    gc.repetition_penalty, gc.top_k, gc.no_repeat_ngram_size, gc.min_p, gc.suppress_tokens = 1.5, 3, 2, 0.2, [21]
    torch.manual_seed(0)
    with caplog.at_level("WARNING", logger="priorl.generation"):
        gen = HFGenerator(model, tok, temperature=0.9, max_new_tokens=8)
    assert "repetition_penalty=1.5" in caplog.text and "top_k=3" in caplog.text
    out = gen.generate(PROMPTS, 4)
    mean, worst = logprob_gap(model, out, 0.9, gen.pad_id)
    assert mean < 1e-5 and worst < 1e-4
    assert model.generation_config.repetition_penalty == 1.5  # restored after the call


def test_the_gap_check_detects_an_inherited_repetition_penalty(model, tok):
    """Control: what generate() samples with the model's own config differs from the training forward."""
    model.generation_config.repetition_penalty = 1.3
    torch.manual_seed(0)
    enc = [tok(p)["input_ids"] for p in PROMPTS]
    width = max(map(len, enc))
    ids = torch.tensor([[0] * (width - len(e)) + e for e in enc])
    mask = (torch.arange(width)[None, :] >= torch.tensor([width - len(e) for e in enc])[:, None]).long()
    model.eval()
    res = model.generate(
        input_ids=ids, attention_mask=mask, do_sample=True, top_k=0, max_new_tokens=6, output_scores=True,
        return_dict_in_generate=True, pad_token_id=0, eos_token_id=2,
    )  # fmt: skip
    new = res.sequences[:, width:]
    steps = [torch.log_softmax(s, -1).gather(-1, new[:, t : t + 1])[:, 0] for t, s in enumerate(res.scores)]
    sampled = torch.stack(steps, 1)
    lens = [(row.index(2) + 1) if 2 in row else len(row) for row in new.tolist()]
    model.train()
    with torch.no_grad():
        lp, _ = sequence_logprobs(model, enc, [r[:n] for r, n in zip(new.tolist(), lens, strict=True)], 1.0, 0)
    gap = torch.cat([(lp[i, :n] - sampled[i, :n]).abs() for i, n in enumerate(lens)]).mean()
    assert gap > 0.05


def test_top_p_below_one_is_refused(model, tok):
    with pytest.raises(ValueError, match="top_p=0.9.*refused"):
        HFGenerator(model, tok, top_p=0.9)
    with pytest.raises(ConfigError, match="generation.top_p"):
        load_config(None, ["generation.top_p=0.9"])


def test_every_eos_id_stops_and_cuts(model, tok):
    digit = tok.convert_tokens_to_ids("1")
    model.generation_config.eos_token_id = [2, digit]
    gen = HFGenerator(model, tok, max_new_tokens=8)
    assert gen.eos_ids == [2, digit] == eos_token_ids(model, tok)
    torch.manual_seed(0)
    out = gen.generate(PROMPTS, 4)
    for ids, lps, fin, text in zip(out.completion_ids, out.logprobs, out.finished, out.texts, strict=True):
        assert len(ids) == len(lps)
        cut = [i for i, t in enumerate(ids) if t in (2, digit)]
        assert cut == ([len(ids) - 1] if fin else [])  # ends at its first EOS, none before
        assert text == tok.decode(ids, skip_special_tokens=True)
    assert any(ids[-1] == digit for ids in out.completion_ids)


def test_stop_string_cuts_tokens_logprobs_and_text(model, tok):
    gen = HFGenerator(model, tok, max_new_tokens=8, stop=["3"])
    torch.manual_seed(0)
    out = gen.generate(PROMPTS, 4)
    stopped = [i for i, c in enumerate(out.completion_ids) if tok.decode(c).endswith("3")]
    assert stopped, "the tiny model writes a 3 somewhere"
    three = tok.convert_tokens_to_ids("3")
    for i, ids in enumerate(out.completion_ids):
        assert len(ids) == len(out.logprobs[i])
        assert "3" not in out.texts[i]
        if three in ids:  # kept through the stop, nothing after
            assert ids.index(three) == len(ids) - 1 and out.finished[i]
    mean, _ = logprob_gap(model, out, 1.0, gen.pad_id)
    assert mean < 1e-5


class _Pieces:
    """A tokenizer stand-in whose tokens are multi-character strings."""

    pieces = {0: "The", 1: " answer", 2: " is 4", 3: "2.\n\nQ", 4: "uestion", 5: "<eos>"}

    def decode(self, ids):
        return "".join(self.pieces[i] for i in ids if i != 5)


@pytest.mark.parametrize(
    ("row", "stop", "expected"),
    [
        ([0, 1, 2, 3, 4, 5], ["\n\n"], (4, True, "The answer is 42.")),  # straddling token kept whole
        ([0, 1, 2, 3, 4, 5], ["Question"], (5, True, "The answer is 42.\n\n")),  # stop spans two tokens
        ([0, 1, 2, 3, 4, 5], ["nothing"], (6, True, "The answer is 42.\n\nQuestion")),  # EOS only
        ([0, 1, 5, 3, 4], ["\n\n"], (3, True, "The answer")),  # EOS before the stop string
        ([0, 1, 2, 3, 4], [], (5, False, "The answer is 42.\n\nQuestion")),  # cut by length
        ([0, 1, 2, 3, 4], ["uest", "answer"], (2, True, "The ")),  # the earliest stop string wins
    ],
)
def test_cut_completion(row, stop, expected):
    assert cut_completion(row, [5], stop, _Pieces().decode) == expected


def test_generation_memory_does_not_grow_with_length(model, tok):
    """At most a few [batch, vocab] tensors alive at once, whatever max_new_tokens (the old code kept one per step)."""
    vocab = model.config.vocab_size
    gen = HFGenerator(model, tok, batch_size=8)
    peaks = {}
    for steps in (4, 32):
        with VocabTensorTracker(vocab, exclude=model.parameters()) as tracker:
            gen.generate(PROMPTS[:8], 1, max_new_tokens=steps, greedy=True)
        peaks[steps] = tracker.peak_bytes
    one = 8 * vocab * 4  # one [batch, vocab] float32 tensor
    assert peaks[32] <= peaks[4] + one, peaks
    # Control: output_logits=True (what the generator used to ask for) keeps one [b, V] per step.
    enc = torch.tensor([tok(p)["input_ids"][:5] for p in PROMPTS[:8]])
    with VocabTensorTracker(vocab, exclude=model.parameters()) as tracker:
        model.generate(input_ids=enc, max_new_tokens=16, min_new_tokens=16, do_sample=False,
                       output_logits=True, return_dict_in_generate=True, pad_token_id=0)  # fmt: skip
    assert tracker.peak_bytes >= 16 * one


def test_eval_batch_size_bounds_generate_calls(model, tok):
    problems = load_problems("builtin:arithmetic-test")[:10]
    gen = HFGenerator(model, tok, max_new_tokens=6, batch_size=256)
    calls = []
    real = model.generate

    def counting(**kw):
        calls.append(kw["input_ids"].shape[0])
        return real(**kw)

    model.generate = counting
    with make_verifier("numeric") as vf:
        small = evaluate(gen, problems, vf, batch_size=3)
        assert calls == [3, 3, 3, 1]
        calls.clear()
        full = evaluate(gen, problems, vf)
        assert calls == [10]
    assert small["accuracy"] == full["accuracy"]


def test_shared_prompt_prefill_samples_what_the_full_prefill_samples(model, tok):
    """share_prompts prefills each distinct prompt once: same tokens (sampled and greedy), same log-probs."""
    outs = {}
    for share in (False, True):
        gen = HFGenerator(model, tok, temperature=0.7, max_new_tokens=8, batch_size=32, share_prompts=share)
        torch.manual_seed(0)
        sampled = gen.generate(PROMPTS, 4)
        greedy = gen.generate(PROMPTS, 2, greedy=True)
        outs[share] = (sampled, greedy, gen)
    (a, ga, gen), (b, gb, _) = outs[False], outs[True]
    assert a.completion_ids == b.completion_ids and ga.completion_ids == gb.completion_ids
    for x, y in zip(a.logprobs, b.logprobs, strict=True):
        assert x == pytest.approx(y, abs=1e-4)
    mean, worst = logprob_gap(model, b, 0.7, gen.pad_id)
    assert mean < 1e-5 and worst < 1e-4


def test_inverse_cdf_sampling_draws_from_the_softmax():
    from priorl.generation.hf import inverse_cdf_sample

    torch.manual_seed(0)
    logits = torch.tensor([[2.0, 0.0, -1.0, float("-inf"), 1.0]])
    probs = torch.softmax(logits, -1)[0]
    n = 40_000
    draws = inverse_cdf_sample(logits.expand(n, -1).contiguous())[:, 0]
    freq = torch.bincount(draws, minlength=5).double() / n
    assert freq[3] == 0.0  # a token of probability 0 is never drawn
    se = (probs.double() * (1 - probs.double()) / n).sqrt()
    assert ((freq - probs.double()).abs() <= 5 * se + 1e-12).all(), (freq, probs)
    torch.manual_seed(1)
    a = inverse_cdf_sample(logits.expand(64, -1).contiguous())
    torch.manual_seed(1)
    assert torch.equal(a, inverse_cdf_sample(logits.expand(64, -1).contiguous()))  # seeded: the same tokens


def test_generation_samples_with_the_temperature_and_records_its_logprobs(model, tok):
    # Sampling at T = 0.5 concentrates on the greedy token more than at T = 2; the recorded log-probs are those of
    # softmax(logits / T), checked against the training forward.
    from priorl.grpo.loss import sequence_logprobs

    firsts = {}
    for temperature in (0.5, 2.0):
        gen = HFGenerator(model, tok, temperature=temperature, max_new_tokens=4)
        torch.manual_seed(0)
        out = gen.generate(PROMPTS[:1], 200)
        firsts[temperature] = len({tuple(c[:1]) for c in out.completion_ids})
        model.train()
        with torch.no_grad():
            lp, mask = sequence_logprobs(model, out.prompt_ids[:20], out.completion_ids[:20], temperature, gen.pad_id)
        for i in range(20):
            n = len(out.completion_ids[i])
            assert torch.allclose(lp[i, :n], torch.as_tensor(out.logprobs[i]), atol=1e-4)
    assert firsts[0.5] < firsts[2.0]
