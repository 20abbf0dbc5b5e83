"""Held-out accuracy: pass@1 with greedy decoding (or avg@k with sampling), by difficulty level."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from priorl.types import Problem


def evaluate(
    generator,
    problems: Sequence[Problem],
    verifier,
    *,
    samples: int = 1,
    max_new_tokens: int | None = None,
    batch_size: int | None = None,
) -> dict:
    """Score ``problems`` with the generator and verifier.

    ``samples == 1``: one greedy completion per problem (pass@1). ``samples > 1``: that many sampled
    completions, and the accuracy is their mean (avg@k); ``pass_at_k`` is then the share of problems with at
    least one completion scoring 1 (the verifier's full score). Returns ``{"accuracy", "pass_at_k",
    "mean_length", "num_problems", "by_level": {level: {"accuracy", "pass_at_k", "n"}}, "verifier_errors",
    "verifier_timeouts"}``; ``mean_length`` is in completion tokens. ``batch_size`` bounds the sequences
    generated at once (memory: the KV cache and one ``[batch_size, vocab]`` score tensor); default: the
    generator's.
    """
    if not problems:
        raise ValueError("no problems to evaluate")
    greedy = samples == 1
    out = generator.generate(
        [p.prompt for p in problems], samples, greedy=greedy, max_new_tokens=max_new_tokens, batch_size=batch_size
    )
    answers = [p.answer for p in problems for _ in range(samples)]
    scored = verifier.score_batch(out.texts, answers)
    groups = [scored.rewards[i * samples : (i + 1) * samples] for i in range(len(problems))]
    per_problem = [sum(g) / samples for g in groups]
    solved = [float(max(g) >= 1.0) for g in groups]
    levels: dict[int | None, list[tuple[float, float]]] = defaultdict(list)
    for p, acc, hit in zip(problems, per_problem, solved, strict=True):
        levels[p.level].append((acc, hit))
    by_level = {
        str(level): {"accuracy": sum(a for a, _ in v) / len(v), "pass_at_k": sum(h for _, h in v) / len(v), "n": len(v)}
        for level, v in sorted(levels.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))
    }
    return {
        "accuracy": sum(per_problem) / len(per_problem),
        "pass_at_k": sum(solved) / len(solved),
        "mean_length": out.num_tokens / len(out),
        "num_problems": len(problems),
        "samples": samples,
        "by_level": by_level,
        "verifier_errors": scored.errors,
        "verifier_timeouts": scored.timeouts,
    }
