"""PriorlProblemSampler with verl's real DataProto and StatefulDataLoader (CPU, any supported verl)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

pytest.importorskip("verl")

from integrations.verl_helpers import B, M, N, Rows, data_config, epochs, loader, scored, true_p  # noqa: E402
from priorl.integrations.verl import PriorlCurriculumSampler, PriorlProblemSampler  # noqa: E402


def test_update_groups_rows_by_extra_info_index():
    class Recording(PriorlCurriculumSampler):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.seen = []
            inner = self.sampler.observe
            self.sampler.observe = lambda ids, r: (self.seen.append((list(ids), [list(g) for g in r])), inner(ids, r))

    sampler = Recording(Rows(), data_config())
    rows = loader(sampler, Rows())
    for step, batch_dict in zip(range(3), rows, strict=False):
        chunk = list(batch_dict["index"])
        data = scored(batch_dict, step)
        sampler.update(data)
        ids, groups = sampler.seen[-1]
        assert sorted(ids) == sorted(chunk)
        # each problem's group holds exactly its N rollouts' scores, whatever the row order
        for pid, group in zip(ids, groups, strict=True):
            rows_of = [r for r, i in enumerate(data.non_tensor_batch["extra_info"]) if i["index"] == pid]
            assert sorted(group) == sorted(float(data.batch["token_level_scores"][r].sum()) for r in rows_of)
            assert len(group) == N


def test_draws_lazily_and_prioritizes():
    sampler = PriorlCurriculumSampler(Rows(), data_config(retest_every=None))
    it = iter(loader(sampler, Rows()))
    assert sampler.metrics()["calls"] == 0
    chosen = []
    for step in range(M // B):  # the unseen phase: every problem once
        batch_dict = next(it)
        assert sampler.metrics()["calls"] == step + 1  # one chunk per batch, drawn when it was asked for
        sampler.update(scored(batch_dict, step))
    it = iter(loader(sampler, Rows()))
    for step in range(M // B, M // B + 5):
        batch_dict = next(it)
        chosen += [int(i) for i in batch_dict["index"]]
        sampler.update(scored(batch_dict, step))
    # after the unseen phase no always-failing (p = 0) or always-solving (p = 1) problem is picked
    assert not [i for i in chosen if true_p(i) in (0.0, 1.0)]


@pytest.mark.parametrize("opts", [{}, {"kind": "prioritized-pass"}], ids=["prioritized", "prioritized-pass"])
def test_resume_through_verls_dataloader_state(opts):
    """verl 0.7's hook order: next batch, save data.pt (before update), update. Resume re-issues the batch."""
    data = Rows()
    ref = PriorlCurriculumSampler(data, data_config(**opts))
    ref_batches = []
    for step, batch_dict in zip(range(14), epochs(loader(ref, data)), strict=False):
        ref_batches.append([int(i) for i in batch_dict["index"]])
        ref.update(scored(batch_dict, step))

    first = PriorlCurriculumSampler(data, data_config(**opts))
    rows = loader(first, data)
    for step, batch_dict in zip(range(8), rows, strict=False):
        if step == 7:
            buf = io.BytesIO()
            torch.save(rows.state_dict(), buf)  # saved before the step's update
            break
        first.update(scored(batch_dict, step))
    # the sampler's part of data.pt is tensors and plain values: it loads without pickle
    buf.seek(0)
    state = torch.load(buf, weights_only=True)

    second = PriorlCurriculumSampler(data, data_config(**opts))
    rows2 = loader(second, data)
    rows2.load_state_dict(state)
    resumed = []
    for step, batch_dict in zip(range(7, 14), epochs(rows2), strict=False):  # crosses into the next pass
        resumed.append([int(i) for i in batch_dict["index"]])
        second.update(scored(batch_dict, step))
    assert resumed == ref_batches[7:14]  # the unscored step is re-issued, then the same stream continues
    assert second.metrics()["calls"] == ref.metrics()["calls"]


def test_state_saved_at_the_end_of_a_pass_resumes_at_the_next_pass():
    """Update before save (priorl's trainer), saved after a pass's last batch: the next pass starts fresh."""
    data = Rows()
    ref = PriorlProblemSampler(data, data_config())
    batches = []
    for step, batch_dict in zip(range(M // B + 2), epochs(loader(ref, data)), strict=False):
        batches.append([int(i) for i in batch_dict["index"]])
        ref.update(scored(batch_dict, step))
        if step == M // B - 1:
            state = ref.state_dict(as_numpy=True)
    resumed = PriorlProblemSampler(data, data_config())
    resumed.load_state_dict(state)
    again = [[int(i) for i in b["index"]] for b, _ in zip(loader(resumed, data), range(2), strict=False)]
    assert again == batches[M // B :]


def test_index_the_sampler_did_not_hand_out_is_refused():
    """Two train files each numbered from 0: rows claim problems of the other file, or problems not drawn."""
    data = Rows(index=lambda i: i % (M // 2))  # the second half repeats the first half's indices
    sampler = PriorlProblemSampler(data, data_config(), rollout_n=N)
    refused = 0
    for step, batch_dict in zip(range(M // B), loader(sampler, data), strict=False):
        handed_out = {int(i) for i in batch_dict["index"]}
        claimed = [int(info["index"]) for info in batch_dict["extra_info"]]
        if set(claimed) <= handed_out and len(set(claimed)) == len(claimed):
            sampler.update(scored(batch_dict, step))  # by chance every row claims its own problem
            continue
        before = sampler.metrics()["awaiting"], sampler.feed.pending
        if not set(claimed) <= handed_out:
            match = r"extra_info.index \d+ is not a problem this sampler handed out.*several data.train_files"
            refused += 1
        else:  # two positions of the chunk claim the same index
            match = rf"appears on {2 * N} rows, more than the {N} rollouts generated"
        with pytest.raises(ValueError, match=match):
            sampler.update(scored(batch_dict, step))
        assert (sampler.metrics()["awaiting"], sampler.feed.pending) == before  # nothing observed
        sampler.feed.retire_all()
    assert refused > 0


def test_the_same_batch_twice_is_refused():
    sampler = PriorlProblemSampler(Rows(), data_config())
    batch = scored(next(iter(loader(sampler, Rows()))), 0)
    sampler.update(batch)
    with pytest.raises(ValueError, match="not a problem this sampler handed out and still awaits"):
        sampler.update(batch)


def test_more_rows_than_generated_are_refused():
    """With rollout_n known, an index on more rows than its rollouts means rows of several problems share it."""
    sampler = PriorlProblemSampler(Rows(), data_config(), rollout_n=N - 1)
    batch = scored(next(iter(loader(sampler, Rows()))), 0)  # N rows per problem
    with pytest.raises(ValueError, match=rf"appears on {N} rows, more than the {N - 1} rollouts generated"):
        sampler.update(batch)


def test_bad_rows_are_named():
    sampler = PriorlProblemSampler(Rows(index=lambda i: "x"), data_config())
    batch_dict = next(iter(loader(sampler, Rows(index=lambda i: "x"))))
    with pytest.raises(ValueError, match=r"row 0: extra_info.index must be the int row position.*'x'"):
        sampler.update(scored(batch_dict, 0, shuffle=False))

    sampler = PriorlProblemSampler(Rows(), data_config())
    batch_dict = next(iter(loader(sampler, Rows())))
    data = scored(batch_dict, 0, shuffle=False)
    data.batch["token_level_scores"][0, -1] = -1.0
    with pytest.raises(ValueError, match=r"row 0 \(problem \d+\): score -1.0 is outside.*reward_min"):
        sampler.update(data)


def test_reward_range_rescales():
    sampler = PriorlProblemSampler(Rows(), data_config(reward_min=-1.0, reward_max=1.0))
    batch_dict = next(iter(loader(sampler, Rows())))
    data = scored(batch_dict, 0, shuffle=False)
    data.batch["token_level_scores"][:, -1] = -1.0  # DAPO-style: -1 means wrong
    sampler.update(data)
    assert sampler.metrics()["unsolved"] == B


def test_bad_config_is_named():
    with pytest.raises(ValueError, match="data.sampler.priorl: sampler.kind 'greedy' is not a kind of sampler"):
        PriorlProblemSampler(Rows(), data_config(kind="greedy"))
    with pytest.raises(ValueError, match="retest_evry: not an option of sampler kind 'prioritized'"):
        PriorlProblemSampler(Rows(), data_config(retest_evry=3))
    with pytest.raises(ValueError, match="larger than the dataset"):
        PriorlProblemSampler(Rows(n=3), data_config())
    with pytest.raises(ValueError, match=r"priorl.sampler.reward_max \(0.0\) must exceed"):
        PriorlProblemSampler(Rows(), data_config(), options={"reward_max": 0.0})
    uniform = PriorlProblemSampler(Rows(), data_config(kind="uniform"))
    assert len(list(iter(uniform))) == M
    assert np.array_equal(np.sort(list(iter(uniform))), np.arange(M))
