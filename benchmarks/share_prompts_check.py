"""HFGenerator(share_prompts=True) against the full prefill: same tokens, log-probs, behaviour gap, time.

    python benchmarks/share_prompts_check.py builtin:tiny-arith builtin:arithmetic none 32

Arguments: model, problems, chat template (auto | none), number of problems (8 completions each, T = 0.6).
"""

import sys
import time

import torch

from priorl.config import ModelConfig
from priorl.data import PromptFormatter, load_problems
from priorl.generation import HFGenerator
from priorl.grpo.loss import sequence_logprobs
from priorl.models import load_policy, load_tokenizer


def main() -> None:
    path, data, template, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    cfg = ModelConfig(path=path, device="cpu", dtype="float32")
    tok, model = load_tokenizer(cfg), load_policy(cfg)
    fmt = PromptFormatter(tok, template, None)
    problems = load_problems(data)[:count]
    prompts = [p.prompt for p in problems]
    stop = [".", "\n"] if template == "auto" else []
    results = {}
    for share in (False, True):
        gen = HFGenerator(
            model, tok, temperature=0.6, max_new_tokens=16, batch_size=256, stop=stop, encode=fmt.encode,
            share_prompts=share,
        )  # fmt: skip
        torch.manual_seed(0)
        start = time.perf_counter()
        out = gen.generate(prompts, 8)
        seconds = time.perf_counter() - start
        torch.manual_seed(1)
        greedy = gen.generate(prompts, 2, greedy=True)
        model.train()
        with torch.no_grad():
            lp, mask = sequence_logprobs(model, out.prompt_ids, out.completion_ids, 0.6, gen.pad_id)
        old = torch.zeros_like(lp)
        for i, row in enumerate(out.logprobs):
            old[i, : len(row)] = torch.tensor(row)
        gap = float(((lp - old).abs() * mask).sum() / mask.sum())
        results[share] = (out, greedy)
        print(f"share={share}: {seconds:.2f}s gap={gap:.2e}")
    (full, full_greedy), (shared, shared_greedy) = results[False], results[True]
    print(
        "sampled tokens equal:", full.completion_ids == shared.completion_ids,
        "greedy equal:", full_greedy.completion_ids == shared_greedy.completion_ids,
    )  # fmt: skip
    diffs = [
        max((abs(x - y) for x, y in zip(r1, r2, strict=True)), default=0.0)
        for r1, r2 in zip(full.logprobs, shared.logprobs, strict=True)
        if len(r1) == len(r2)
    ]
    print("max lp diff:", max(diffs, default=0.0))


if __name__ == "__main__":
    main()
