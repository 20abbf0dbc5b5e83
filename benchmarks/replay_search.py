"""Replay at its own tuned settings against fair controls (issue 44, part 1): a coordinate search of `priorl compare`
studies on the shipped testbed (configs/study-r7.yaml: 64 problems a step, std-scaled advantages, 20,480 completions).

Each stage is one study in OUT/STAGE; a finished stage is read from its summary.json, a stopped one resumed, so
``run`` continues across sessions. Every stage keeps grpo (at its choice after the first), because a study's
targets come from its grpo; each arm is tuned in its own knobs with ``PRESET:KEY`` grids.

  arms    grpo over rate x train.updates_per_step {1,2,4,8,16,32} (the knob by which grpo reuses a batch, as
          replay reuses rollouts: mini-batches per step, one optimizer step each; grown from {1,2,4,8} when the
          choice sat at its edge); adv-replay over rate x replay.warmup_steps {0,2,10}
  shape   adv-replay at its rate and warm-up, over replay_ratio {0.5,1,2} x priority_exponent {0.5,1};
          naive-replay over rate x replay_ratio {0.5,1,2} at adv-replay's warm-up
  age     adv-replay at its warm-up, ratio and exponent, over tau_max {3,10,40} x rate {half, chosen, double}
  confirm the three arms at their choices on evaluation seeds 5-9, which chose nothing
  steps   adv-replay at its choices, over train.updates_per_step {4,8,16,32} x rate {chosen/4, /2, chosen}: grpo
          gained most from more mini-batches at a smaller rate (arms), so replay gets the same knob
  confirm-steps  grpo and adv-replay at the steps stage's choice on evaluation seeds 5-9

    python benchmarks/replay_search.py run --out runs/replay-search --jobs 2      # about 4 h of 2 cores
    python benchmarks/replay_search.py plan --out runs/replay-search              # each stage's command, no runs
    python benchmarks/replay_search.py report runs/replay-search                  # the table for RESULTS.md

A stage's command depends on the choices before it, so ``plan`` prints the later stages only once those are made.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from study_driver import cli, run_study  # this folder's script (run as a script: it is on sys.path)

CONFIG = "configs/study-r7.yaml"
TUNE_SEEDS = "100-102"
SEEDS = "0-4"
CONFIRM_SEEDS = "5-9"
GRPO_RATES = (1.6e-4, 3.2e-4, 6.4e-4, 1.28e-3, 2.56e-3)
REPLAY_RATES = (1.6e-4, 3.2e-4, 6.4e-4, 1.28e-3)
UPDATES = (1, 2, 4, 8, 16, 32)
REPLAY_UPDATES = (4, 8, 16, 32)  # the steps stage: replay ran at 4 (the testbed's) in every stage before it
WARMUPS = (0, 2, 10)
RATIOS = (0.5, 1, 2)
EXPONENTS = (0.5, 1)
TAU_MAX = (3, 10, 40)  # short, the paper's, longer than the run's 40 steps (no age limit)
STAGES = ("arms", "shape", "age", "confirm", "steps", "confirm-steps")
ARMS = ("grpo", "naive-replay", "adv-replay")


def _values(values) -> str:
    return ",".join(f"{v:g}" for v in values)


def _fixed(preset: str, cell: dict) -> list[str]:
    """``--set PRESET:KEY=VALUE`` for each key of a chosen cell."""
    out = []
    for key, value in cell.items():
        out += ["--set", f"{preset}:{key}={value:g}" if isinstance(value, float) else f"{preset}:{key}={value}"]
    return out


def _adv_over(grpo: list[str], adv: dict, key: str, values, rates) -> list[str]:
    """grpo at its choice (``grpo``, its --set flags) beside adv-replay at its choices ``adv`` except ``key`` and
    the rate, gridded over ``key`` in ``values`` x the rate in ``rates``."""
    keep = {k: v for k, v in adv.items() if k not in ("train.lr", key)}
    return [
        "--presets", "grpo,adv-replay", *grpo, *_fixed("adv-replay", keep),
        "--grid", f"adv-replay:{key}={_values(values)}", "--grid", f"adv-replay:train.lr={_values(rates)}",
    ]  # fmt: skip


def stage_args(stage: str, chosen: dict[str, dict]) -> list[str]:
    """The `priorl compare` arguments of ``stage`` (without --out and --jobs), given the cells chosen so far
    (``chosen[preset]``, merged over the earlier stages). Raises KeyError when a choice it needs is not made yet."""
    common = ["-c", CONFIG, "--tune-seeds", TUNE_SEEDS, "--seeds", SEEDS, "--primary", "adv-replay"]
    if stage == "arms":
        return [
            *common, "--presets", "grpo,adv-replay",
            "--grid", f"grpo:train.lr={_values(GRPO_RATES)}",
            "--grid", f"grpo:train.updates_per_step={_values(UPDATES)}",
            "--grid", f"adv-replay:train.lr={_values(REPLAY_RATES)}",
            "--grid", f"adv-replay:replay.warmup_steps={_values(WARMUPS)}",
        ]  # fmt: skip
    grpo, adv = _fixed("grpo", chosen["grpo"]), chosen["adv-replay"]
    if stage == "shape":
        warmup = adv["replay.warmup_steps"]
        return [
            *common, "--presets", "grpo,naive-replay,adv-replay", *grpo,
            *_fixed("adv-replay", {"train.lr": adv["train.lr"], "replay.warmup_steps": warmup}),
            "--grid", f"adv-replay:replay.replay_ratio={_values(RATIOS)}",
            "--grid", f"adv-replay:replay.priority_exponent={_values(EXPONENTS)}",
            "--set", f"naive-replay:replay.warmup_steps={warmup}",
            "--grid", f"naive-replay:train.lr={_values(REPLAY_RATES)}",
            "--grid", f"naive-replay:replay.replay_ratio={_values(RATIOS)}",
        ]  # fmt: skip
    if stage == "age":
        lr = adv["train.lr"]
        return [*common, *_adv_over(grpo, adv, "replay.tau_max", TAU_MAX, (lr / 2, lr, lr * 2))]
    if stage == "confirm":
        naive = {**chosen["naive-replay"], "replay.warmup_steps": adv["replay.warmup_steps"]}  # set in "shape"
        return [
            "-c", CONFIG, "--seeds", CONFIRM_SEEDS, "--primary", "adv-replay", "--presets", ",".join(ARMS),
            *grpo, *_fixed("naive-replay", naive), *_fixed("adv-replay", adv),
        ]  # fmt: skip
    if stage == "steps":
        lr = adv["train.lr"]
        return [*common, *_adv_over(grpo, adv, "train.updates_per_step", REPLAY_UPDATES, (lr / 4, lr / 2, lr))]
    if stage == "confirm-steps":
        return [
            "-c", CONFIG, "--seeds", CONFIRM_SEEDS, "--primary", "adv-replay", "--presets", "grpo,adv-replay",
            *grpo, *_fixed("adv-replay", adv),
        ]  # fmt: skip
    raise ValueError(f"unknown stage {stage!r}; the stages: {', '.join(STAGES)}")


def stage_choices(out: Path, stage: str) -> dict[str, dict] | None:
    """The cells a finished stage chose (``{preset: cell}``), or None when it has not finished."""
    path = out / stage / "summary.json"
    if not path.exists():
        return None
    summary = json.loads(path.read_text())
    return {p: dict(v.get("chosen") or {}) for p, v in summary.get("presets", {}).items()}


def merged_choices(out: Path, upto: str) -> dict[str, dict]:
    """Each arm's setting after the stages before ``upto``: a later stage's choice updates an earlier one's keys."""
    chosen: dict[str, dict] = {}
    for stage in STAGES[: STAGES.index(upto)]:
        found = stage_choices(out, stage)
        if found is None:
            raise KeyError(stage)
        for preset, cell in found.items():
            chosen.setdefault(preset, {}).update(cell)
    return chosen


def run(out: Path, jobs: int) -> int:
    for stage in STAGES:
        args = [] if (out / stage / "summary.json").exists() else stage_args(stage, merged_choices(out, stage))
        code = run_study(out / stage, args, jobs)
        if code != 0:
            return code
    return 0


def plan_ready(out: Path) -> list[str]:
    """The stages whose command can be written now (every stage before them has chosen)."""
    ready = []
    for stage in STAGES:
        try:
            stage_args(stage, merged_choices(out, stage))
        except KeyError:
            break
        ready.append(stage)
    return ready


def plan(out: Path) -> None:
    ready = plan_ready(out)
    for stage in STAGES:
        if stage in ready:
            args = stage_args(stage, merged_choices(out, stage))
            print(f"{stage}: priorl compare {' '.join(args)} --out {out / stage} --jobs 2")
        else:
            print(f"{stage}: waits for the choices of the stages before it")


def _cells(out: Path, stages) -> dict[str, int]:
    """Per preset, the grid cells its runs were tuned over in ``stages`` (grpo counted in "arms" only, where it is
    tuned; the later stages keep it at its choice)."""
    cells: dict[str, int] = {}
    for stage in stages:
        path = out / stage / "summary.json"
        if not path.exists():
            continue
        for preset, entry in json.loads(path.read_text()).get("presets", {}).items():
            if stage != "arms" and preset == "grpo":
                continue
            cells[preset] = cells.get(preset, 0) + len(entry.get("sensitivity") or [])
    return cells


def _text(cell: dict) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in cell.items()) or "-"


def report(out: Path) -> None:
    """Each arm's choice with the cells it was tuned over (replay at 4 mini-batches, then adv-replay with the
    mini-batches tuned too), then the paired ratios of every comparison whose studies have finished."""
    cells = _cells(out, ("arms", "shape", "age"))
    final = merged_choices(out, "confirm") if (out / "age" / "summary.json").exists() else {}
    print("| arm | cells tuned | chosen |")
    print("|---|---|---|")
    for preset in ARMS:
        print(f"| {preset} | {cells.get(preset, 0)} | {_text(final.get(preset, {}))} |")
    if (out / "steps" / "summary.json").exists():
        steps = merged_choices(out, "confirm-steps")["adv-replay"]
        count = _cells(out, ("steps",)).get("adv-replay", 0)
        tuned = f"{cells.get('adv-replay', 0)} + {count}"
        print(f"| adv-replay, mini-batches tuned too (steps) | {tuned} | {_text(steps)} |")
    here = Path(__file__).parent
    pairs = [
        ("age", "adv-replay", "arms", "grpo"), ("shape", "naive-replay", "arms", "grpo"),
        ("age", "adv-replay", "shape", "naive-replay"), ("confirm", "adv-replay", "confirm", "grpo"),
        ("confirm", "naive-replay", "confirm", "grpo"), ("confirm", "adv-replay", "confirm", "naive-replay"),
        ("steps", "adv-replay", "arms", "grpo"), ("confirm-steps", "adv-replay", "confirm-steps", "grpo"),
    ]  # fmt: skip
    for sa, a, sb, b in pairs:
        if (out / sa / "summary.json").exists() and (out / sb / "summary.json").exists():
            print(f"\n$ python benchmarks/cross_study_ratio.py {out / sa}:{a} {out / sb}:{b}", flush=True)
            subprocess.call([sys.executable, str(here / "cross_study_ratio.py"), f"{out / sa}:{a}", f"{out / sb}:{b}"])


def main(argv: list[str] | None = None) -> int:
    helps = (
        "run (or continue) every stage in order",
        "print each stage's command (the later ones once the earlier have chosen)",
        "the choices, cells per arm and paired ratios",
    )
    return cli(__doc__, "runs/replay-search", run, plan, report, helps, argv)


if __name__ == "__main__":
    sys.exit(main())
