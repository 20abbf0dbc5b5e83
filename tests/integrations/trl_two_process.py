"""One rank of the two-process TRL replay test (tests/integrations/test_trl_replay.py), launched by torchrun.

Trains 3 generations of the tiny model with PriorlGRPOTrainer(replay=...) on CPU (gloo) and writes what
this rank saw to OUT/rank{R}.json: per generation, its batch rows and its replayed rows; the buffer at the end.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
from trl import GRPOConfig

sys.path.insert(0, str(Path(__file__).parent))  # the test module beside this script: its dataset and reward
from test_trl_replay import N_PROBLEMS, _dataset, half_right  # noqa: E402

from priorl.config import ModelConfig  # noqa: E402
from priorl.integrations.trl import PriorlGRPOTrainer  # noqa: E402
from priorl.models import load_policy, load_tokenizer  # noqa: E402
from priorl.replay import AdvReplayBuffer  # noqa: E402
from priorl.sampling import PrioritizedSampler  # noqa: E402


class Recorder(PriorlGRPOTrainer):
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
    data = _dataset()
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
        sampler=PrioritizedSampler(N_PROBLEMS, seed=0),
        replay=AdvReplayBuffer(replay_ratio=0.5, tau_max=3, warmup_steps=1, seed=0),
    )  # fmt: skip
    trainer.train()
    stored = [
        [r.problem_id, r.step, r.row, r.advantage, r.completion_ids.tolist()] for r in trainer.priorl_replay.stored()
    ]
    result = {"world": int(os.environ["WORLD_SIZE"]), "generations": trainer.seen, "stored": stored,
              "weights": float(sum(p.double().sum() for p in model.parameters()))}  # fmt: skip
    (out / f"rank{rank}.json").write_text(json.dumps(result))
    if torch.distributed.is_initialized():
        torch.distributed.barrier()


if __name__ == "__main__":
    main()
