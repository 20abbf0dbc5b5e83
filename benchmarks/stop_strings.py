"""Issue 22: generation time with stop strings, decoding every row at every step (before round 6) against
decoding only the rows whose new token may end a stop string (now), in one run, on the shipped tiny model.

256 sequences (64 prompts x 4) in one generate() call, 32 new tokens, a stop string that rarely fires; the
same seed for every variant, and the sampled tokens are checked to be identical. Prints JSON:

    OMP_NUM_THREADS=1 python benchmarks/stop_strings.py > benchmarks/per-step-costs/stop_strings.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from priorl.config import ModelConfig
from priorl.data import load_problems
from priorl.generation import HFGenerator
from priorl.generation import hf as hf_module
from priorl.models import load_policy, load_tokenizer


class DecodeEveryRow:
    """The stopping criterion before round 6: the window of every row decoded at every step."""

    def __init__(self, tokenizer, stops, start, may_complete=None):
        self.tokenizer, self.stops, self.start = tokenizer, list(stops), start
        self.window = max(len(s) for s in self.stops) + 4

    def __call__(self, input_ids, scores, **kwargs):
        lo = max(self.start, input_ids.shape[1] - self.window)
        tails = self.tokenizer.batch_decode(input_ids[:, lo:].tolist(), skip_special_tokens=True)
        return torch.tensor([any(s in t for s in self.stops) for t in tails], dtype=torch.bool)


CRITERION_S: list[float] = []


def timed(criterion):
    """``criterion`` whose calls add their time to CRITERION_S."""

    class Timed(criterion):
        def __call__(self, input_ids, scores, **kwargs):
            t0 = time.perf_counter()
            out = super().__call__(input_ids, scores, **kwargs)
            CRITERION_S.append(time.perf_counter() - t0)
            return out

    return Timed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--stop", default="\n\nQ")
    ap.add_argument("--repeats", type=int, default=7)
    # The tiny model ends its answers after ~4 tokens at temperature 1; at 3 it rarely samples EOS, so rows run
    # to max_new_tokens as long completions do on a real model.
    ap.add_argument("--temperature", type=float, default=3.0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = ModelConfig(path="builtin:tiny-arith", device="cpu")
    model, tok = load_policy(cfg), load_tokenizer(cfg)
    prompts = [p.prompt for p in load_problems("builtin:arithmetic")[: args.prompts]]
    new_criterion = hf_module._StopStrings
    variants = {
        "no_stop": (new_criterion, []),
        "before": (timed(DecodeEveryRow), [args.stop]),
        "after": (timed(new_criterion), [args.stop]),
    }
    criterion_ms: dict[str, list[float]] = {k: [] for k in variants}
    gens = {
        k: HFGenerator(
            model, tok, temperature=args.temperature, max_new_tokens=args.max_new_tokens, batch_size=4096, stop=s
        )
        for k, (_, s) in variants.items()
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    outputs = {}
    for _ in range(args.repeats + 1):  # the first round warms up (and builds the stop table)
        for name, (criterion, _) in variants.items():
            hf_module._StopStrings = criterion
            torch.manual_seed(0)
            CRITERION_S.clear()
            t0 = time.perf_counter()
            out = gens[name].generate(prompts, args.n)
            times[name].append(time.perf_counter() - t0)
            criterion_ms[name].append(1e3 * sum(CRITERION_S))
            outputs[name] = out
    hf_module._StopStrings = new_criterion
    same = outputs["before"].completion_ids == outputs["after"].completion_ids
    ms = {k: round(1e3 * statistics.median(v[1:]), 2) for k, v in times.items()}
    stopped = sum(
        any(s in t for s in [args.stop]) for t in tok.batch_decode([c for c in outputs["no_stop"].completion_ids])
    )
    print(json.dumps({
        "model": "builtin:tiny-arith", "sequences": args.prompts * args.n, "max_new_tokens": args.max_new_tokens,
        "stop": args.stop, "temperature": args.temperature, "completions_with_the_stop": stopped,
        "mean_completion_tokens": round(outputs["after"].num_tokens / len(outputs["after"]), 2), "median_ms": ms,
        "criterion_ms_per_generate": {k: round(statistics.median(v[1:]), 2) for k, v in criterion_ms.items()},
        "before_over_after": round(ms["before"] / ms["after"], 2),
        "before_over_no_stop": round(ms["before"] / ms["no_stop"], 2),
        "after_over_no_stop": round(ms["after"] / ms["no_stop"], 2),
        "same_tokens_before_after": same, "repeats": args.repeats,
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
