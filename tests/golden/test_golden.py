"""Every preset's short fixed-seed run is identical to its committed golden record (tests/golden/golden.py), so a
refactor that is meant to change no behavior provably changes none."""

import json

import pytest

from priorl.presets import PRESETS

from .golden import RUNS, differences, record


@pytest.mark.parametrize("preset", list(PRESETS))
def test_a_preset_run_matches_its_golden_record(tmp_path, preset):
    path = RUNS / f"{preset.replace('+', '_')}.json"
    assert path.is_file(), f"no golden record for {preset}: python tests/golden/golden.py --write {preset}"
    diff = differences(json.loads(path.read_text()), record(preset, tmp_path / "run"))
    assert not diff, f"{preset} changed ({len(diff)} differences): " + "; ".join(diff[:5])


def test_the_comparison_can_fail():
    golden = {"metrics": [{"loss": 0.5, "n_replayed": 8}], "batches": [{"problem_ids": [1, 2]}]}
    assert differences(golden, json.loads(json.dumps(golden))) == []
    assert differences(
        golden, {"metrics": [{"loss": 0.5 + 1e-4, "n_replayed": 8}], "batches": [{"problem_ids": [1, 2]}]}
    )
    assert differences(golden, {"metrics": [{"loss": 0.5, "n_replayed": 9}], "batches": [{"problem_ids": [1, 2]}]})
    assert differences(golden, {"metrics": [{"loss": 0.5, "n_replayed": 8}], "batches": [{"problem_ids": [2, 1]}]})
    assert differences(golden, {"metrics": [], "batches": [{"problem_ids": [1, 2]}]})
