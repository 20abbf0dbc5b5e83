"""Golden runs: a short fixed-seed run of every preset, recorded so that a refactor provably changes no behavior.

Each preset trains the shipped tiny model for a few steps on a 12-problem pool (so samplers revisit problems and
replay has a buffer to draw from), with one held-out evaluation at the end. What is recorded per preset: every
step's metrics (timings dropped), the problem ids and rewards of every step (batches.jsonl), and the evaluation.
``tests/golden/test_golden.py`` re-runs each preset and compares; after a change that is meant to change behavior,
regenerate and say so in the commit:

    python tests/golden/golden.py --write          # all presets, one thread (about a minute)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = HERE / "runs"

OVERRIDES = [
    "model.path=builtin:tiny-arith",
    "data.train=builtin:arithmetic:n=12",
    "generation.group_size=4",
    "generation.max_new_tokens=6",
    "train.batch_size=4",
    "train.max_steps=8",
    "train.lr=1e-4",
    "eval.before=false",
    "eval.after=true",
    "eval.during=0",
    "eval.max_problems=8",
    "logging.tensorboard=false",
    "logging.progress=false",
    "checkpoint.every=0",
]
REPLAY = ["replay.warmup_steps=1"]  # replay acts from step 2 within the 8 steps
AGE = ["replay.tau_max=3"]  # adv replay's age limit, short enough to evict within the run


def record(preset: str, out_dir: Path) -> dict:
    """Run ``preset`` once (one torch thread) and return what is compared."""
    import torch

    from priorl.grpo.trainer import Trainer
    from priorl.presets import PRESETS, preset_config

    overrides = list(OVERRIDES)
    if PRESETS[preset]["replay.kind"] != "none":
        overrides += REPLAY
    if PRESETS[preset]["replay.kind"] == "adv-replay":
        overrides += AGE
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        trainer = Trainer(preset_config(None, [*overrides, f"out_dir={out_dir}"], preset=preset))
        trainer.train()
    finally:
        torch.set_num_threads(threads)

    def rows(name: str) -> list[dict]:
        return [json.loads(line) for line in (out_dir / name).read_text().splitlines() if line.strip()]

    metrics = [{k: v for k, v in m.items() if not k.startswith("time/")} for m in rows("metrics.jsonl")]
    return {"preset": preset, "overrides": overrides, "metrics": metrics, "batches": rows("batches.jsonl"),
            "eval": rows("eval.jsonl")}  # fmt: skip


def differences(expected, actual, path: str = "", rel: float = 1e-6) -> list[str]:
    """Where ``actual`` differs from ``expected``: anything but floats exactly, floats to ``rel`` (the runs are
    bit-identical on one machine; the tolerance only absorbs another CPU's summation order)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = [f"{path}.{k}: missing" for k in expected if k not in actual]
        out += [f"{path}.{k}: new" for k in actual if k not in expected]
        for k in expected.keys() & actual.keys():
            out += differences(expected[k], actual[k], f"{path}.{k}", rel)
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{path}: {len(actual)} entries, expected {len(expected)}"]
        return [
            d
            for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            for d in differences(e, a, f"{path}[{i}]", rel)
        ]
    if isinstance(expected, float) or isinstance(actual, float):
        if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
            if math.isclose(expected, actual, rel_tol=rel, abs_tol=1e-9) or (
                math.isnan(expected) and math.isnan(actual)
            ):
                return []
    elif expected == actual:
        return []
    return [f"{path}: {actual!r}, expected {expected!r}"]


def main() -> int:
    import tempfile

    from priorl.presets import PRESETS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="write tests/golden/runs/PRESET.json (else compare)")
    ap.add_argument("presets", nargs="*", default=list(PRESETS))
    args = ap.parse_args()
    RUNS.mkdir(exist_ok=True)
    failed = 0
    for preset in args.presets:
        with tempfile.TemporaryDirectory() as tmp:
            got = record(preset, Path(tmp) / "run")
        path = RUNS / f"{preset.replace('+', '_')}.json"
        if args.write:
            path.write_text(json.dumps(got, indent=1) + "\n")
            print(f"wrote {path}")
        else:
            diff = differences(json.loads(path.read_text()), got)
            failed += bool(diff)
            print(f"{preset}: {'identical' if not diff else f'{len(diff)} differences, first: ' + diff[0]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
