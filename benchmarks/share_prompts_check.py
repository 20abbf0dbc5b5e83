"""HFGenerator(share_prompts=True) against the full prefill: same tokens, log-probs, behaviour gap, time.

    python benchmarks/share_prompts_check.py builtin:tiny-arith builtin:arithmetic none 32

Arguments: model, problems, chat template (auto | none), number of problems (8 completions each, T = 0.6).
"""
import torch, time, sys
from priorl.config import ModelConfig
from priorl.models import load_policy, load_tokenizer
from priorl.generation import HFGenerator
from priorl.grpo.loss import sequence_logprobs
from priorl.data import load_problems, PromptFormatter
path = sys.argv[1]; data = sys.argv[2]; tmpl = sys.argv[3]
cfg = ModelConfig(path=path, device="cpu", dtype="float32")
tok = load_tokenizer(cfg); model = load_policy(cfg)
fmt = PromptFormatter(tok, tmpl, None)
probs = load_problems(data)[:int(sys.argv[4])]
res = {}
for share in (False, True):
    g = HFGenerator(model, tok, temperature=0.6, max_new_tokens=16, batch_size=256, stop=[".", "\n"] if tmpl=="auto" else [], encode=fmt.encode, share_prompts=share)
    torch.manual_seed(0); t=time.perf_counter()
    out = g.generate([p.prompt for p in probs], 8)
    dt=time.perf_counter()-t
    torch.manual_seed(1)
    greedy = g.generate([p.prompt for p in probs], 2, greedy=True)
    model.train()
    with torch.no_grad():
        lp, mask = sequence_logprobs(model, out.prompt_ids, out.completion_ids, 0.6, g.pad_id)
    old = torch.zeros_like(lp)
    for i, l in enumerate(out.logprobs): old[i, :len(l)] = torch.tensor(l)
    gap = float(((lp-old).abs()*mask).sum()/mask.sum())
    res[share] = (out, greedy)
    print(f"share={share}: {dt:.2f}s gap={gap:.2e}")
a, b = res[False], res[True]
print("sampled tokens equal:", a[0].completion_ids == b[0].completion_ids, "greedy equal:", a[1].completion_ids == b[1].completion_ids)
print("max lp diff:", max(max((abs(x-y) for x,y in zip(r1,r2)), default=0) for r1,r2 in zip(a[0].logprobs,b[0].logprobs) if len(r1)==len(r2)))
