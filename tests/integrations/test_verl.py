"""PrioritizedCurriculumSampler against verl's real create_rl_sampler, DataProto and StatefulDataLoader (CPU)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

pytest.importorskip("verl")
main_ppo = pytest.importorskip("verl.trainer.main_ppo")

from omegaconf import OmegaConf  # noqa: E402
from torchdata.stateful_dataloader import StatefulDataLoader  # noqa: E402
from verl import DataProto  # noqa: E402
from verl.experimental.dataset.sampler import AbstractCurriculumSampler  # noqa: E402
from verl.utils.dataset.rl_dataset import collate_fn  # noqa: E402

from priorl.integrations.verl import PrioritizedCurriculumSampler  # noqa: E402

M, B, N = 40, 4, 3  # problems, problems per step, rollouts per problem


class Rows(torch.utils.data.Dataset):
    """What verl's RLHFDataset yields, reduced to the fields the sampler reads."""

    def __init__(self, n=M, index=lambda i: i):
        self.n, self.index = n, index

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"input_ids": torch.tensor([i, i + 1]), "extra_info": {"index": self.index(i)}, "index": i}


def _config(**priorl):
    cfg = {
        "train_batch_size": B,
        "gen_batch_size": None,
        "dataloader_num_workers": 0,
        "shuffle": True,
        "seed": 0,
        "sampler": {"class_path": "pkg://priorl.integrations.verl", "class_name": "PrioritizedCurriculumSampler"},
    }
    if priorl:
        cfg["sampler"]["priorl"] = priorl
    return OmegaConf.create(cfg)


def _loader(sampler, data):
    return StatefulDataLoader(data, batch_size=B, sampler=sampler, collate_fn=collate_fn, drop_last=True, num_workers=0)


def _epochs(loader):
    """verl's fit loop: ``for epoch ...: for batch_dict in train_dataloader``."""
    while True:
        yield from loader


def true_p(i):
    return (i % 5) / 4  # problem i's success rate: 0, .25, .5, .75, 1


def _scored(batch_dict, step, shuffle=True):
    """verl's step in miniature: repeat each prompt n times, score, and reorder rows like balance_batch."""
    data = DataProto.from_single_dict(batch_dict).repeat(repeat_times=N, interleave=True)
    idx = data.non_tensor_batch["index"]
    rng = np.random.default_rng(step)
    scores = torch.zeros(len(idx), 5)
    scores[:, -1] = torch.tensor([float(rng.random() < true_p(int(i))) for i in idx])
    data.batch["token_level_scores"] = scores
    if shuffle:
        data.reorder(torch.as_tensor(rng.permutation(len(data))))
    return data


def test_loaded_by_verls_create_rl_sampler():
    sampler = main_ppo.create_rl_sampler(_config(), Rows())
    assert isinstance(sampler, PrioritizedCurriculumSampler)
    assert isinstance(sampler, AbstractCurriculumSampler)
    assert len(sampler) == M


def test_update_groups_rows_by_extra_info_index():
    class Recording(PrioritizedCurriculumSampler):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.seen = []
            inner = self.sampler.observe
            self.sampler.observe = lambda ids, r: (self.seen.append((list(ids), [list(g) for g in r])), inner(ids, r))

    sampler = Recording(Rows(), _config())
    loader = _loader(sampler, Rows())
    for step, batch_dict in zip(range(3), loader, strict=False):
        chunk = list(batch_dict["index"])
        data = _scored(batch_dict, step)
        sampler.update(data)
        ids, groups = sampler.seen[-1]
        assert sorted(ids) == sorted(chunk)
        # each problem's group holds exactly its N rollouts' scores, whatever the row order
        for pid, group in zip(ids, groups, strict=True):
            rows = [r for r, i in enumerate(data.non_tensor_batch["extra_info"]) if i["index"] == pid]
            assert sorted(group) == sorted(float(data.batch["token_level_scores"][r].sum()) for r in rows)
            assert len(group) == N


def test_draws_lazily_and_prioritizes():
    sampler = PrioritizedCurriculumSampler(Rows(), _config(retest_every=None))
    loader = _loader(sampler, Rows())
    it = iter(loader)
    assert sampler.metrics()["calls"] == 0
    chosen = []
    for step in range(M // B):  # the unseen phase: every problem once
        batch_dict = next(it)
        assert sampler.metrics()["calls"] == step + 1  # one chunk per batch, drawn when it was asked for
        sampler.update(_scored(batch_dict, step))
    it = iter(loader)
    for step in range(M // B, M // B + 5):
        batch_dict = next(it)
        chosen += [int(i) for i in batch_dict["index"]]
        sampler.update(_scored(batch_dict, step))
    # after the unseen phase no always-failing (p = 0) or always-solving (p = 1) problem is picked
    assert not [i for i in chosen if true_p(i) in (0.0, 1.0)]


def test_resume_through_verls_dataloader_state():
    """verl's order: next batch, save data.pt (before update), update. Resume re-issues the unscored batch."""
    data = Rows()
    ref = PrioritizedCurriculumSampler(data, _config())
    ref_batches = []
    for step, batch_dict in zip(range(14), _epochs(_loader(ref, data)), strict=False):
        ref_batches.append([int(i) for i in batch_dict["index"]])
        ref.update(_scored(batch_dict, step))

    first = PrioritizedCurriculumSampler(data, _config())
    loader = _loader(first, data)
    for step, batch_dict in zip(range(8), loader, strict=False):
        if step == 7:
            buf = io.BytesIO()
            torch.save(loader.state_dict(), buf)  # verl saves before the step's update
            break
        first.update(_scored(batch_dict, step))
    # the sampler's part of data.pt is tensors and plain values: it loads without pickle
    buf.seek(0)
    state = torch.load(buf, weights_only=True)

    second = PrioritizedCurriculumSampler(data, _config())
    loader2 = _loader(second, data)
    loader2.load_state_dict(state)
    resumed = []
    for step, batch_dict in zip(range(7, 14), _epochs(loader2), strict=False):  # crosses into the next pass
        resumed.append([int(i) for i in batch_dict["index"]])
        second.update(_scored(batch_dict, step))
    assert resumed == ref_batches[7:14]  # the unscored step is re-issued, then the same stream continues
    assert second.metrics()["calls"] == ref.metrics()["calls"]


def test_bad_rows_are_named():
    sampler = PrioritizedCurriculumSampler(Rows(index=lambda i: "x"), _config())
    batch_dict = next(iter(_loader(sampler, Rows(index=lambda i: "x"))))
    with pytest.raises(ValueError, match=r"row 0: extra_info.index must be the int row position.*'x'"):
        sampler.update(_scored(batch_dict, 0, shuffle=False))

    sampler = PrioritizedCurriculumSampler(Rows(), _config())
    batch_dict = next(iter(_loader(sampler, Rows())))
    data = _scored(batch_dict, 0, shuffle=False)
    data.batch["token_level_scores"][0, -1] = -1.0
    with pytest.raises(ValueError, match=r"row 0 \(problem \d+\): score -1.0 is outside.*reward_min"):
        sampler.update(data)


def test_reward_range_rescales():
    sampler = PrioritizedCurriculumSampler(Rows(), _config(reward_min=-1.0, reward_max=1.0))
    batch_dict = next(iter(_loader(sampler, Rows())))
    data = _scored(batch_dict, 0, shuffle=False)
    data.batch["token_level_scores"][:, -1] = -1.0  # DAPO-style: -1 means wrong
    sampler.update(data)
    assert sampler.metrics()["unsolved"] == B


def test_bad_config_is_named():
    with pytest.raises(ValueError, match="kind must be 'prioritized' or 'uniform', got 'greedy'"):
        PrioritizedCurriculumSampler(Rows(), _config(kind="greedy"))
    with pytest.raises(ValueError, match="option PrioritizedSampler does not take"):
        PrioritizedCurriculumSampler(Rows(), _config(retest_evry=3))
    with pytest.raises(ValueError, match="larger than the dataset"):
        PrioritizedCurriculumSampler(Rows(n=3), _config())
    uniform = PrioritizedCurriculumSampler(Rows(), _config(kind="uniform"))
    assert len(list(iter(uniform))) == M
