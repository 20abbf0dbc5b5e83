"""Shared pieces of the verl tests: verl-shaped rows and PPO batches built with verl's own DataProto.

Nothing here stands in for verl's logic: batches go through verl's ``DataProto``, verl's
``compute_advantage`` (GRPO) and verl's position-id formula; only generation and scoring are synthetic.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import torch
from omegaconf import OmegaConf
from torchdata.stateful_dataloader import StatefulDataLoader
from verl import DataProto
from verl.utils.dataset.rl_dataset import collate_fn
from verl.utils.model import compute_position_id_with_mask

M, B, N = 40, 4, 3  # problems, problems per step, rollouts per problem
CONFIG_DIR = os.path.join(
    os.path.dirname(__file__), "..", "..", "src", "priorl", "integrations", "verl", "config"
)  # the entry point's hydra config
TINY_MODEL = os.path.join(os.path.dirname(__file__), "..", "..", "src", "priorl", "assets", "tiny-arith")


class Rows(torch.utils.data.Dataset):
    """What verl's RLHFDataset yields, reduced to the fields the sampler reads."""

    def __init__(self, n=M, index=lambda i: i):
        self.n, self.index = n, index

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"input_ids": torch.tensor([i, i + 1]), "extra_info": {"index": self.index(i)}, "index": i}


def data_config(**priorl):
    """verl's ``data`` config as the curriculum hook sees it (options under ``sampler.priorl``)."""
    cfg = {
        "train_batch_size": B,
        "gen_batch_size": None,
        "dataloader_num_workers": 0,
        "shuffle": True,
        "seed": 0,
        "sampler": {"class_path": "pkg://priorl.integrations.verl", "class_name": "PriorlCurriculumSampler"},
    }
    if priorl:
        cfg["sampler"]["priorl"] = priorl
    return OmegaConf.create(cfg)


def loader(sampler, data):
    return StatefulDataLoader(data, batch_size=B, sampler=sampler, collate_fn=collate_fn, drop_last=True, num_workers=0)


def epochs(loader):
    """verl's fit loop: ``for epoch ...: for batch_dict in train_dataloader``."""
    while True:
        yield from loader


def true_p(i):
    return (i % 5) / 4  # problem i's success rate: 0, .25, .5, .75, 1


def scored(batch_dict, step, shuffle=True, n=N):
    """verl's step in miniature: repeat each prompt n times, score, and reorder rows like balance_batch."""
    data = DataProto.from_single_dict(batch_dict).repeat(repeat_times=n, interleave=True)
    idx = data.non_tensor_batch["index"]
    rng = np.random.default_rng(step)
    scores = torch.zeros(len(idx), 5)
    scores[:, -1] = torch.tensor([float(rng.random() < true_p(int(i))) for i in idx])
    data.batch["token_level_scores"] = scores
    if shuffle:
        data.reorder(torch.as_tensor(rng.permutation(len(data))))
    return data


def token(step, row, j):
    """Response token ids encode the step a row was generated at (replayed rows are recognisable)."""
    return 1000 * step + 10 * (row % 50) + j + 1


def step_of(response_ids) -> int:
    return int(response_ids[0]) // 1000


def ppo_batch(indices, step, *, n=N, width=(8, 6), logp=-1.0, ref=False, seed=None):
    """The batch verl hands ``_update_actor``: rollouts of ``indices`` after rewards and GRPO advantages.

    Prompts are left-padded to ``width[0]``, responses right-padded to ``width[1]``; some rows have a
    tool-output hole (response_mask 0 inside the attended response). ``old_log_probs`` are drawn around
    ``logp``; scores follow :func:`true_p`. Rows come reordered, as verl's balance_batch leaves them.
    """
    from verl.trainer.ppo.ray_trainer import compute_advantage

    P, R = width
    rng = np.random.default_rng(step if seed is None else seed)
    idx = np.repeat(np.asarray(indices, dtype=np.int64), n)
    rows = len(idx)
    prompts = torch.zeros(rows, P, dtype=torch.long)
    responses = torch.zeros(rows, R, dtype=torch.long)
    attention = torch.zeros(rows, P + R, dtype=torch.long)
    loss_mask = torch.zeros(rows, R, dtype=torch.long)
    scores = torch.zeros(rows, R)
    for i in range(rows):
        p, r = int(rng.integers(1, P + 1)), int(rng.integers(1, R + 1))
        prompts[i, P - p :] = torch.arange(p) + 5 + int(idx[i]) % 7
        responses[i, :r] = torch.tensor([token(step, i, j) for j in range(r)])
        attention[i, P - p : P + r] = 1
        loss_mask[i, :r] = 1
        if r >= 3 and i % 4 == 0:
            loss_mask[i, 1] = 0  # a tool-output token: attended, not trained on
        scores[i, r - 1] = float(rng.random() < true_p(int(idx[i])))
    old = torch.tensor(rng.normal(logp, 0.3, (rows, R)), dtype=torch.float32) * loss_mask
    tensors = {
        "prompts": prompts,
        "responses": responses,
        "response_mask": loss_mask,
        "input_ids": torch.cat([prompts, responses], dim=1),
        "attention_mask": attention,
        "position_ids": compute_position_id_with_mask(attention),
        "old_log_probs": old,
        "token_level_scores": scores,
        "token_level_rewards": scores.clone(),
    }
    if ref:
        tensors["ref_log_prob"] = torch.tensor(rng.normal(-2.0, 0.3, (rows, R)), dtype=torch.float32) * loss_mask
    non_tensors = {
        "uid": np.array([f"{step}-{i}" for i in idx], dtype=object),
        "extra_info": np.array([{"index": int(i)} for i in idx], dtype=object),
    }
    data = DataProto.from_dict(tensors=tensors, non_tensors=non_tensors)
    data = compute_advantage(data, adv_estimator="grpo", num_repeat=n)
    data.reorder(torch.as_tensor(rng.permutation(rows)))
    return data


def tiny_model_with_template(directory):
    """The shipped tiny model, with a chat template (verl's dataset applies one to every prompt)."""
    target = os.path.join(directory, "model")
    shutil.copytree(TINY_MODEL, target)
    path = os.path.join(target, "tokenizer_config.json")
    with open(path) as f:
        tokenizer_config = json.load(f)
    tokenizer_config["chat_template"] = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    with open(path, "w") as f:
        json.dump(tokenizer_config, f)
    return target


def arithmetic_parquet(path, count):
    """A verl training file: ``count`` problems, ``extra_info.index`` = row position."""
    import pandas as pd

    rows = [
        {
            "data_source": "arith",
            "prompt": [{"role": "user", "content": f"{i}+1="}],
            "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": str(i + 1)},
            "extra_info": {"index": i},
        }
        for i in range(count)
    ]
    pd.DataFrame(rows).to_parquet(path)
    return path
