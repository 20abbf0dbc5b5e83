"""Held-out accuracy: pass@1 with greedy decoding (or avg@k with sampling), by difficulty level."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

from priorl.types import Problem


def example_indices(n: int, k: int) -> list[int]:
    """``k`` problem indices spread evenly over ``n`` (the same ones at every evaluation)."""
    k = min(k, n)
    return sorted({(i * n) // k for i in range(k)}) if k > 0 else []


def evaluate(
    generator,
    problems: Sequence[Problem],
    verifier,
    *,
    samples: int = 1,
    max_new_tokens: int | None = None,
    batch_size: int | None = None,
    progress: Callable[[int], None] | None = None,
    examples: int = 0,
) -> dict:
    """Score ``problems`` with the generator and verifier.

    ``samples == 1``: one greedy completion per problem (pass@1). ``samples > 1``: that many sampled
    completions, and the accuracy is their mean (avg@k); ``pass_at_k`` is then the share of problems with at
    least one completion scoring 1 (the verifier's full score). Returns ``{"accuracy", "pass_at_k",
    "mean_length", "num_problems", "by_level": {level: {"accuracy", "pass_at_k", "n"}}, "verifier_errors",
    "verifier_timeouts"}``; ``mean_length`` is in completion tokens. ``batch_size`` bounds the sequences
    generated at once (memory: the KV cache and one ``[batch_size, vocab]`` score tensor); default: the
    generator's. ``progress(done)`` is called with the number of problems done after each generation batch;
    ``examples > 0`` adds ``"examples"``: that many problems spread over the set, each with its prompt,
    answer, first completion and reward.
    """
    if not problems:
        raise ValueError("no problems to evaluate")
    greedy = samples == 1
    # Generate in batches of whole problems (``batch_size`` sequences, default the generator's), so progress
    # can be reported in between.
    per_call = max(1, (batch_size or getattr(generator, "batch_size", len(problems) * samples)) // samples)
    texts: list[str] = []
    num_tokens = 0
    for start in range(0, len(problems), per_call):
        chunk = problems[start : start + per_call]
        out = generator.generate(
            [p.prompt for p in chunk], samples, greedy=greedy, max_new_tokens=max_new_tokens, batch_size=batch_size
        )
        texts += out.texts
        num_tokens += out.num_tokens
        if progress is not None:
            progress(start + len(chunk))
    answers = [p.answer for p in problems for _ in range(samples)]
    scored = verifier.score_batch(texts, answers)
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
    result = {
        "accuracy": sum(per_problem) / len(per_problem),
        "pass_at_k": sum(solved) / len(solved),
        "mean_length": num_tokens / len(texts),
        "num_problems": len(problems),
        "samples": samples,
        "by_level": by_level,
        "verifier_errors": scored.errors,
        "verifier_timeouts": scored.timeouts,
    }
    if examples > 0:
        result["examples"] = [
            {
                "prompt": problems[i].prompt,
                "answer": problems[i].answer,
                "completion": texts[i * samples],
                "reward": scored.rewards[i * samples],
            }
            for i in example_indices(len(problems), examples)
        ]
    return result


def evaluate_held_out(
    generator,
    problems: Sequence[Problem],
    verifier,
    *,
    samples: int = 0,
    max_new_tokens: int | None = None,
    batch_size: int | None = None,
    progress: Callable[[int], None] | None = None,
    examples: int = 0,
) -> dict:
    """Greedy pass@1 by level (:func:`evaluate`), and with ``samples > 0`` also ``"sampled"``: avg@k and pass@k
    over that many sampled completions per problem. What a run logs in eval.jsonl and ``priorl eval`` prints.
    ``progress(done)`` counts generation units: problems, then problems again for the sampled pass."""
    n = len(problems)
    result = evaluate(
        generator, problems, verifier, max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress,
        examples=examples,
    )  # fmt: skip
    if samples > 0:
        result["sampled"] = evaluate(
            generator, problems, verifier, samples=samples, max_new_tokens=max_new_tokens, batch_size=batch_size,
            progress=(lambda d: progress(n + d)) if progress else None,
        )  # fmt: skip
    return result
