"""priorl's problem sampler and rollout replay inside TRL's GRPOTrainer, tiny scale, CPU (pip install 'priorl[trl]').

    python examples/trl_tiny.py --max-steps 4                 # the problem sampler
    python examples/trl_tiny.py --max-steps 6 --replay        # sampler + rollout replay (replay from generation 3)
    python examples/trl_tiny.py --max-steps 6 --replay --no-sampler   # replay with TRL's own prompt order

The same script scales to a real model and many GPUs (``accelerate launch examples/trl_tiny.py ...`` with
``--model Qwen/Qwen3-0.6B-Base``): only the model, the data and GRPOConfig change. docs/scale.md has the
full multi-GPU setup. The shipped tiny model lives at ``priorl.assets.default_model_path()``.
"""

from __future__ import annotations

import argparse
import tempfile

from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import GRPOConfig

from priorl import PrioritizedSampler
from priorl.assets import default_model_path
from priorl.data import load_problems
from priorl.integrations.trl import PriorlGRPOTrainer
from priorl.replay import AdvReplayBuffer
from priorl.rewards import numeric_score


def correct(completions: list[str], answer: list[str], **kwargs) -> list[float]:
    """TRL reward function: 1 when the last number of the completion equals the answer (rewards in [0, 1])."""
    return [numeric_score(c, a) for c, a in zip(completions, answer, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(default_model_path()), help="the shipped tiny model by default")
    parser.add_argument("--max-steps", type=int, default=4)
    parser.add_argument("--problems", type=int, default=256)
    parser.add_argument("--output-dir", default=None)
    parser.add_argument("--replay", action="store_true", help="add rollout replay (AdvReplayBuffer)")
    parser.add_argument("--no-sampler", action="store_true", help="TRL's own prompt order (needs --replay)")
    args = parser.parse_args()
    if args.no_sampler and not args.replay:
        parser.error("--no-sampler needs --replay (with neither, use trl.GRPOTrainer itself)")

    problems = load_problems("builtin:arithmetic")[: args.problems]
    data = Dataset.from_dict({"prompt": [p.prompt for p in problems], "answer": [p.answer for p in problems]})
    tokenizer = AutoTokenizer.from_pretrained(args.model, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(args.model)
    config = GRPOConfig(
        output_dir=args.output_dir or tempfile.mkdtemp(prefix="priorl-trl-"),
        per_device_train_batch_size=16,  # 16 completions per step: 4 problems x 4 generations
        num_generations=4,
        max_completion_length=8,
        max_steps=args.max_steps,
        learning_rate=5e-5,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=0,
    )
    trainer = PriorlGRPOTrainer(
        model=model,
        reward_funcs=correct,
        args=config,
        train_dataset=data,
        processing_class=tokenizer,
        sampler=None if args.no_sampler else PrioritizedSampler(len(data), seed=0),
        # replayed rows per fresh row, at most tau_max generations old, drawn by (|A| + eps)^priority_exponent;
        # every process must build the buffer with the same seed (it is replicated: see docs/scale.md)
        replay=AdvReplayBuffer(replay_ratio=0.5, tau_max=4, warmup_steps=2, seed=0) if args.replay else None,
    )
    trainer.train()
    if trainer.priorl_sampler is not None:
        metrics = trainer.priorl_sampler.metrics()
        shown = ("calls", "informative_fraction", "unseen", "active", "solved", "unsolved")
        print(
            f"done: {args.max_steps} steps; sampler " + ", ".join(f"{k} {metrics[k]:g}" for k in shown if k in metrics)
        )
    if trainer.priorl_replay is not None:
        m = trainer.priorl_replay.metrics()
        print(
            f"replay: {m['replayed']:g} rows replayed in the last generation, "
            f"mean age {m['replayed_mean_age']:.2f} generations, "
            f"{m['size']:g} stored, {m['evicted_age']:g} evicted by age"
        )


if __name__ == "__main__":
    main()
