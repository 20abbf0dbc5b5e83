"""Coverage: visits per problem from a histogram, budget share per level, rebuilt from batches.jsonl."""

import json

import numpy as np
import pytest

from priorl.sampling.coverage import Coverage


def test_percentiles_and_shares_match_a_direct_count(tmp_path):
    rng = np.random.default_rng(0)
    levels = rng.integers(1, 4, size=200).tolist()
    cov = Coverage(200, levels)
    batches = [rng.choice(200, size=rng.integers(1, 40), replace=False).tolist() for _ in range(60)]
    for ids in batches:
        cov.observe(ids)
    visits = np.bincount(np.concatenate(batches), minlength=200)
    m = cov.metrics()
    assert m["max_visits"] == visits.max() and m["never_visited"] == int((visits == 0).sum())
    assert m["p99_visits"] == int(np.sort(visits)[int(np.ceil(0.99 * 200)) - 1])
    flat = np.concatenate(batches)
    for lvl in (1, 2, 3):
        assert m[f"share_level_{lvl}"] == pytest.approx(np.mean(np.asarray(levels)[flat] == lvl))
    path = tmp_path / "batches.jsonl"
    path.write_text("".join(json.dumps({"step": i, "problem_ids": ids}) + "\n" for i, ids in enumerate(batches)))
    again = Coverage(200, levels)
    again.replay_batches(path)
    assert again.metrics() == m and np.array_equal(again.visits(), visits)
    summary = cov.summary()
    assert summary["draws"] == len(flat) and summary["problems"] == 200
    assert summary["per_problem"] == pytest.approx(len(flat) / 200, abs=1e-4)
    assert summary["visited"] == int((visits > 0).sum()) and summary["max"] == visits.max()
    assert summary["mean_per_visited"] == pytest.approx(len(flat) / (visits > 0).sum(), abs=1e-4)


def test_no_levels_no_shares_and_wrong_length_is_refused():
    cov = Coverage(3)
    cov.observe([0, 0, 1])
    assert cov.metrics() == {"max_visits": 2, "p99_visits": 2, "never_visited": 1}
    with pytest.raises(ValueError, match="levels has 2 labels"):
        Coverage(3, [1, 2])
