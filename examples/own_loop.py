"""priorl's two components in a GRPO loop of your own, on the shipped tiny model (CPU, about a minute).

    python examples/own_loop.py --steps 20

The loop is yours: generation, scoring and the policy update below are plain code you would replace
with your own. priorl supplies which problems to roll out (``PrioritizedSampler``) and which past
rollouts to train on again (``AdvReplayBuffer``); ``make_rollouts`` shows what the buffer needs
from each completion: its tokens, the log-probs recorded while sampling it, and its group advantage.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from priorl import AdvReplayBuffer, PrioritizedSampler, Rollout
from priorl.assets import default_model_path
from priorl.data import load_problems
from priorl.eval import evaluate
from priorl.generation import HFGenerator
from priorl.grpo.advantages import group_advantages
from priorl.grpo.loss import clipped_surrogate, sequence_logprobs
from priorl.rewards import make_verifier


def make_rollouts(ids: list[int], out, rewards: np.ndarray, step: int) -> list[Rollout]:
    """One Rollout per completion: ``out`` holds the G completions of each problem in ``ids``, grouped."""
    advantages = group_advantages(rewards)  # [B, G]: (r - mean) / (std + eps) per group, frozen from now on
    group = rewards.shape[1]
    return [
        Rollout(
            problem_id=pid,
            prompt_ids=out.prompt_ids[i * group + j],
            completion_ids=out.completion_ids[i * group + j],
            behavior_logprobs=out.logprobs[i * group + j],  # recorded while sampling: the ratio's denominator
            reward=float(rewards[i, j]),
            advantage=float(advantages[i, j]),
            step=step,
        )
        for i, pid in enumerate(ids)
        for j in range(group)
    ]


def update_policy(model, optimizer, batch: list[Rollout], pad_id: int, temperature: float) -> float:
    """One clipped policy-gradient step, token-mean over the batch; ratios against the behavior log-probs."""
    batch = [r for r in batch if r.completion_ids]
    if not batch:
        return 0.0
    model.train()
    logp, mask = sequence_logprobs(
        model, [list(r.prompt_ids) for r in batch], [list(r.completion_ids) for r in batch], temperature, pad_id
    )
    old = torch.zeros_like(logp)
    for i, r in enumerate(batch):
        old[i, : len(r.behavior_logprobs)] = torch.tensor(r.behavior_logprobs, dtype=torch.float32)
    advantages = torch.tensor([r.advantage for r in batch], dtype=torch.float32)
    loss_sum, _ = clipped_surrogate(logp, old, advantages, mask)
    loss = loss_sum / mask.sum()
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return float(loss.detach())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32, help="problems per step")
    parser.add_argument("--group-size", type=int, default=8, help="completions per problem")
    parser.add_argument("--eval-problems", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)

    path = default_model_path()  # the shipped tiny model, a normal Hugging Face directory
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
    generator = HFGenerator(model, tokenizer, temperature=1.0, max_new_tokens=8, batch_size=512)
    verifier = make_verifier("numeric")
    problems = load_problems("builtin:arithmetic")
    held_out = load_problems("builtin:arithmetic-test")[: args.eval_problems]

    sampler = PrioritizedSampler(len(problems), seed=args.seed)
    buffer = AdvReplayBuffer(tau_max=10, replay_ratio=0.5, warmup_steps=2, seed=args.seed)
    before = evaluate(generator, held_out, verifier)["accuracy"]
    for step in range(args.steps):
        ids = sampler.sample(args.batch_size)
        out = generator.generate([problems[i].prompt for i in ids], args.group_size)
        answers = [problems[i].answer for i in ids for _ in range(args.group_size)]
        rewards = np.array(verifier.score_batch(out.texts, answers).rewards).reshape(len(ids), args.group_size)
        sampler.observe(ids, rewards)
        fresh = make_rollouts(ids, out, rewards, step)
        batch = buffer.compose(fresh, step)  # all fresh + round(0.5 * len(fresh)) replayed once warmed up
        loss = update_policy(model, optimizer, batch, generator.pad_id, generator.temperature)
        m = {**{f"sampler/{k}": v for k, v in sampler.metrics().items()}, **buffer.metrics()}
        print(
            f"step {step + 1}: reward {rewards.mean():.3f}  informative {m['sampler/informative_fraction']:.0%}  "
            f"fresh {len(fresh)}  replayed {len(batch) - len(fresh)}  loss {loss:+.4f}",
            flush=True,
        )
    after = evaluate(generator, held_out, verifier)["accuracy"]
    verifier.close()
    print(f"held-out pass@1 on {len(held_out)} problems: {before:.1%} -> {after:.1%}")


if __name__ == "__main__":
    main()
