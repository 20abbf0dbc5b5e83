"""The study report's sensitivity plot reads per-preset grids (``--grid grpo:train.lr=...``) as one setting."""

from __future__ import annotations

import pytest

from priorl.study import report


def test_the_axis_strips_a_preset_prefix_and_gathers_each_presets_key():
    assert report.sensitivity_axis({"grid": {"train.lr": [1e-4, 2e-4]}}) == ("train.lr", ["train.lr"])
    grid = {"grpo:train.lr": [1e-6, 2e-6], "adv-replay:train.lr": [1e-6], "adv-replay:replay.warmup_steps": [0, 2]}
    assert report.sensitivity_axis({"grid": grid}) == ("train.lr", ["grpo:train.lr", "adv-replay:train.lr"])


def test_a_per_preset_grid_draws_one_line_per_preset(tmp_path, monkeypatch):
    plt = report.pyplot()
    if plt is None:
        pytest.skip("matplotlib is not installed")
    drawn = {}

    def keep(fig, path):
        drawn["labels"] = [line.get_label() for line in fig.axes[0].get_lines() if not line.get_label().startswith("_")]
        drawn["scale"] = fig.axes[0].get_xscale()
        plt.close(fig)
        return str(path)

    monkeypatch.setattr(report, "_save", keep)
    rows = [{"cell": {"train.lr": v}, "completions": c} for v, c in ((1e-6, None), (2e-6, 900.0))]
    summary = {"budget": 1024, "presets": {"grpo": {"sensitivity": rows}, "prioritized-pass": {"sensitivity": rows}}}
    tuning = {"grid": {"grpo:train.lr": [1e-6, 2e-6], "prioritized-pass:train.lr": [1e-6, 2e-6]}}
    report._plot_sensitivity(plt, summary, tuning, tmp_path)
    assert drawn == {"labels": ["grpo", "prioritized-pass"], "scale": "log"}
