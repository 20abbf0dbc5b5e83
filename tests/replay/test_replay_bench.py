"""The replay benchmark runs at tiny sizes and reports the rows the CLI expects (timings are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

from replay_helpers import batch

from priorl.bench.replay import NaivePrioritizedReplay, run_replay_bench


def test_rows_for_each_impl_and_size():
    rows = run_replay_bench([100, 1000], fresh=64, repeats=2, seed=0, progress=False)
    assert [(r["impl"], r["stored"]) for r in rows] == [
        ("sumtree", 100),
        ("naive", 100),
        ("sumtree", 1000),
        ("naive", 1000),
    ]
    assert all(r["fresh"] == 64 and r["step_ms"] > 0 for r in rows)


def test_naive_baseline_is_age_bounded_prioritized_replay():
    naive = NaivePrioritizedReplay(capacity=10, tau_max=1, replay_ratio=1.0, alpha=0.5, eps=1e-6, seed=0)
    naive.add(batch([0.5, 0.0, -0.5], step=0))
    naive.add(batch([0.25], step=2, start_id=3))
    out = naive.compose(batch([0.5], step=3, start_id=4), step=3)
    assert [r.problem_id for r in out] == [4, 3]  # step-0 rollouts expired, zero advantage never stored


def test_cli_json_output():
    proc = subprocess.run(
        [sys.executable, "-m", "priorl.cli", "bench", "replay", "--json", "--sizes", "1e3", "--repeats", "2"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    payload = json.loads(proc.stdout)
    assert {r["impl"] for r in payload["results"]} == {"sumtree", "naive"}
    assert "naive_over_sumtree_at_max" in payload
