"""One rank of the two-process TRL replay test (tests/integrations/test_trl_replay.py), launched by torchrun.

Trains 3 generations of the tiny model with PrioritizedGRPOTrainer(replay=...) on CPU (gloo) and writes what
this rank saw to OUT/rank{R}.json: per generation, its batch rows and its replayed rows; the buffer at the end.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import datasets
import torch
from trl import GRPOConfig

from priorl.config import ModelConfig
from priorl.data import load_problems
from priorl.integrations.trl import PrioritizedGRPOTrainer
from priorl.models import load_policy, load_tokenizer
from priorl.replay import RolloutReplayBuffer
from priorl.sampling import PrioritizedSampler


def half_right(completions, answer, **kwargs):
    return [1.0 if (c.strip() == a or len(c) % 2 == 0) else 0.0 for c, a in zip(completions, answer, strict=True)]


class Recorder(PrioritizedGRPOTrainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen: list[dict] = []

    def _priorl_extend(self, output, inputs):
        fresh = int(output["completion_ids"].shape[0])
        out = super()._priorl_extend(output, inputs)
        self.seen.append(
            {
                "fresh": fresh,
                "rows": int(out["completion_ids"].shape[0]),
                "num_items_in_batch": int(out["num_items_in_batch"]),
                "local_tokens": int(out["completion_mask"].sum()),
                "replayed": [[r.problem_id, r.step, r.row] for r in self.priorl_last_draw],
            }
        )
        return out


def main() -> None:
    out = Path(sys.argv[1])
    rank = int(os.environ["RANK"])
    problems = load_problems("builtin:arithmetic")[:24]
    data = datasets.Dataset.from_dict({"prompt": [p.prompt for p in problems], "answer": [p.answer for p in problems]})
    tok = load_tokenizer(ModelConfig(path="builtin:tiny-arith"))
    tok.padding_side = "left"
    model = load_policy(ModelConfig(path="builtin:tiny-arith", device="cpu", dtype="float32"))
    args = GRPOConfig(
        output_dir=str(out / "trainer"), per_device_train_batch_size=4, num_generations=4, max_completion_length=6,
        max_steps=3, learning_rate=1e-3, logging_steps=1, save_strategy="no", report_to="none", use_cpu=True,
        seed=0, temperature=1.0, disable_tqdm=True,
    )  # fmt: skip
    trainer = Recorder(
        model=model, reward_funcs=half_right, args=args, train_dataset=data, processing_class=tok,
        sampler=PrioritizedSampler(len(data), seed=0),
        replay=RolloutReplayBuffer(replay_ratio=0.5, tau_max=3, warmup_steps=1, seed=0),
    )  # fmt: skip
    trainer.train()
    stored = [
        [r.problem_id, r.step, r.row, r.advantage, r.completion_ids.tolist()] for r in trainer.priorl_replay.stored()
    ]
    result = {"world": int(os.environ["WORLD_SIZE"]), "generations": trainer.seen, "stored": stored,
              "weights": float(sum(p.double().sum() for p in model.parameters()))}  # fmt: skip
    (out / f"rank{rank}.json").write_text(json.dumps(result))
    torch.distributed.barrier() if torch.distributed.is_initialized() else None


if __name__ == "__main__":
    main()
