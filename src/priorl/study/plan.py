"""What a study runs: seeds, the tuning grid, and the config of every run.

A study has two phases. **Tuning**: each preset runs at each grid cell (one value per gridded key; several
``--grid`` options multiply) on the tuning seeds, evaluated on the validation split. **Evaluation**: each preset
runs at the cell that won by the criterion (:mod:`priorl.study.stats`) on the evaluation seeds, disjoint from the
tuning seeds, evaluated on the test split. A study with neither a grid nor tuning seeds has only the evaluation
phase, at the base config's settings.

The config of a run is built in one order, the same as ``priorl train``'s: the base config file, the preset laid
over it (:func:`priorl.presets.apply_preset`), the ``--set`` overrides, the grid cell, and then what the study
itself fixes (seed, budget, evaluation schedule, split). So a grid or ``--set`` value overrides what a preset sets.
A ``--set`` key of a part a preset turns off (``replay.tau_max`` for ``grpo``) is left out of that preset's runs and
the plan says so.

A key written ``PRESET:KEY`` (``--grid grpo:train.updates_per_step=1,2,4``,
``--set naive-replay:replay.warmup_steps=2``) applies to that preset alone: each arm is tuned in its own knobs, and a
setting one arm chose can be fixed for it alone in the next study of a coordinate search.

A run's directory names its phase, preset, cell and seed (``OUT/tune/adv-replay/train.lr=4e-05/seed_100``), so a
resumed study that adds grid values or seeds finds every run it already did.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from priorl.config import RunConfig, apply_overrides, foreign_keys, validate_config
from priorl.presets import PART_KEYS, PRESETS, apply_preset

# A study evaluates at least this often (as a share of the budget) so that completions to a target are read off
# a fine curve, not interpolated across a long stretch.
MIN_EVAL_POINTS = 32


def parse_seeds(text: str, option: str = "--seeds") -> list[int]:
    """``"0-4"`` -> ``[0, 1, 2, 3, 4]``; ``"7,8,9"``; ``"0,2,5-7"``; ``"7,"`` (one seed) -> ``[7]``.

    A bare number is refused: it used to mean a count (``--seeds 3`` was seeds 0, 1, 2) and must never silently
    mean something else; ``--num-seeds N`` is the count. Raises ValueError naming the bad part.
    """
    text = str(text).strip()
    if text.lstrip("-").isdigit():
        count = f" (or --num-seeds {text})" if option == "--seeds" else ""
        raise ValueError(
            f"{option} {text}: a bare number is ambiguous (--seeds N used to be a count of seeds). Write seeds as a "
            f"list or a range: {option} 0-{max(0, int(text) - 1)}{count} for {text} seeds from 0, or "
            f"{option} {text}, for the single seed {text}"
        )
    values: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        lo, dash, hi = part.partition("-")
        try:
            if dash:
                a, b = int(lo), int(hi)
                if b < a:
                    raise ValueError
                values += list(range(a, b + 1))
            else:
                values.append(int(part))
        except ValueError:
            raise ValueError(
                f"{option} {text!r}: {part!r} is not a seed or a range (expected e.g. 0-4, 7,8,9 or 0,2,5-7)"
            ) from None
    if not values:
        raise ValueError(f"{option} {text!r}: no seed given (expected e.g. 0-4, 7,8,9 or 7,)")
    if len(set(values)) != len(values):
        raise ValueError(f"{option} {text!r}: a seed is listed twice")
    if min(values) < 0:
        raise ValueError(f"{option} {text!r}: seeds are >= 0")
    return values


def split_key(key: str) -> tuple[str | None, str]:
    """``"grpo:train.lr"`` -> ``("grpo", "train.lr")``; a key without a preset -> ``(None, key)``. Raises ValueError
    naming an unknown preset (with the closest name)."""
    owner, sep, bare = key.partition(":")
    if not sep:
        return None, key
    if owner not in PRESETS:
        from priorl.presets import unknown_preset

        raise ValueError(f"{key}: {unknown_preset(owner)}")
    return owner, bare


def parse_grid(items: list[str]) -> dict[str, list]:
    """``["train.lr=2e-5,4e-5", "grpo:train.updates_per_step=2,4"]`` -> ``{"train.lr": [2e-05, 4e-05], ...}``.

    Values are read as YAML (numbers stay numbers); each key once. ``PRESET:KEY`` grids a key for that preset alone
    (:func:`preset_grid`). The key is checked against the config when the runs are built. Raises ValueError naming
    the bad item.
    """
    import yaml

    grid: dict[str, list] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or not raw.strip():
            raise ValueError(f"--grid {item!r}: expected key=v1,v2,..., e.g. train.lr=2e-5,4e-5,8e-5")
        if key in grid:
            raise ValueError(f"--grid {item!r}: {key} is gridded twice; give all its values in one --grid")
        try:
            owner, bare = split_key(key)
        except ValueError as exc:
            raise ValueError(f"--grid {item!r}: {exc}") from None
        if bare in grid or (owner is None and any(split_key(k)[1] == key for k in grid)):
            raise ValueError(f"--grid {item!r}: {bare} is gridded for every preset and for one; give one of them")
        if bare in PART_KEYS:
            raise ValueError(f"--grid {item!r}: {key} chooses a part; compare parts with --presets instead")
        values = []
        for text in (v.strip() for v in raw.split(",")):
            if not text:
                raise ValueError(f"--grid {item!r}: an empty value")
            values.append(_value(text, item, yaml))
        if len(set(map(json.dumps, values))) != len(values):
            raise ValueError(f"--grid {item!r}: a value is listed twice")
        grid[key] = values
    return grid


def merge_grid(recorded: dict[str, list], given: dict[str, list]) -> dict[str, list]:
    """A resumed study's grid grown by ``given`` (:func:`parse_grid`'s output): each given key replaces that key's
    recorded values, and every recorded key not given stays, so ``--resume --grid grpo:train.updates_per_step=...``
    grows one dimension of a multi-key grid and reuses every run done. Raises ValueError when a given key and a
    kept one grid the same setting for every preset and for one (``train.lr`` beside ``grpo:train.lr``)."""
    merged = {key: values for key, values in recorded.items() if key not in given}
    for key in given:
        owner, bare = split_key(key)
        for kept in merged:
            kept_owner, kept_bare = split_key(kept)
            if kept_bare == bare and (owner is None or kept_owner is None):
                raise ValueError(
                    f"--grid {key}: the resumed study grids {kept}, and one setting cannot be gridded for every "
                    f"preset and for one; grow {kept} instead"
                )
    merged.update(given)
    return merged


def _value(text: str, item: str, yaml):
    """A grid value: a number when it reads as one (``4e-5`` too, which YAML 1.1 would keep a string), else YAML."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise ValueError(f"--grid {item!r}: {text!r} is not a valid value") from None


def grid_cells(grid: dict[str, list]) -> list[dict]:
    """Every combination of the gridded values, in the order given (one empty cell for no grid)."""
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))]


def cell_name(cell: dict) -> str:
    """A cell as a directory name: ``train.lr=4e-05``, several keys joined by ``,``; ``default`` for no grid."""
    if not cell:
        return "default"
    return ",".join(f"{k}={fmt_value(v)}" for k, v in cell.items())


def fmt_value(value) -> str:
    """A grid value as the harness writes it in directory names, flags and reports (floats in ``%g``)."""
    if isinstance(value, float):
        return f"{value:g}"
    return json.dumps(value) if not isinstance(value, str) else value


@dataclass(frozen=True)
class Run:
    """One run of a study: its phase (``tune`` or ``eval``), preset, grid cell, seed and full config."""

    phase: str
    preset: str
    cell: dict = field(hash=False)
    seed: int
    config: RunConfig = field(hash=False, compare=False)

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.phase, self.preset, cell_name(self.cell), self.seed)

    @property
    def dir(self) -> Path:
        return Path(self.config.out_dir)


def _foreign(preset: str) -> set[str]:
    """Dotted keys of the parts ``preset`` turns off or sets to a kind that does not use them."""
    overlay = PRESETS[preset]
    foreign = set()
    for key in PART_KEYS:
        section = key.split(".")[0]
        foreign |= {f"{section}.{k}" for k in foreign_keys(section, overlay[key])}
    return foreign


def preset_grid(preset: str, grid: dict[str, list]) -> dict[str, list]:
    """The part of ``grid`` that ``preset`` uses, keyed by config key: a key of a part it turns off
    (``replay.tau_max`` for grpo) is not a dimension of its tuning (it runs once per value of the other keys, not
    once per value of that one), nor is another preset's ``PRESET:KEY``; its own ``PRESET:KEY`` is, as ``KEY``."""
    foreign = _foreign(preset)
    out = {}
    for key, values in grid.items():
        owner, bare = split_key(key)
        if owner in (None, preset) and bare not in foreign:
            out[bare] = values
    return out


def grid_flag_keys(preset: str, grid: dict[str, list]) -> dict[str, str]:
    """For each key of :func:`preset_grid`, the key as given to ``--grid`` (``adv-replay:replay.tau_max``)."""
    return {split_key(k)[1]: k for k in grid if split_key(k)[0] in (None, preset)}


def split_overrides(preset: str, overrides: list[str]) -> tuple[list[str], list[str]]:
    """(the ``--set`` overrides that apply to ``preset``, the ones left out): a key of a part the preset turns
    off, or of another kind of that part, is left out (it would be an error in that run's config). Another preset's
    ``PRESET:KEY=VALUE`` is in neither; the preset's own is kept as ``KEY=VALUE``."""
    foreign = _foreign(preset)
    kept, left = [], []
    for item in overrides:
        key, sep, value = item.partition("=")
        owner, bare = split_key(key.strip())
        if owner not in (None, preset):
            continue
        item = f"{bare}{sep}{value}" if owner else item
        (left if bare in foreign else kept).append(item)
    return kept, left


def run_config(
    base: dict,
    preset: str,
    *,
    overrides: list[str] = (),
    cell: dict | None = None,
    seed: int,
    budget: int,
    eval_points: int,
    out_dir: str | Path,
    split: str = "test",
) -> RunConfig:
    """The config of one run: ``base`` (a config dict), then ``preset``, then the ``--set`` ``overrides`` that
    apply to it, then the grid ``cell``, then the study's own keys (seed, the budget in completions, an evaluation
    every ``budget / eval_points`` completions on ``split``, no progress bar or TensorBoard, one checkpoint kept).
    Raises ConfigError naming the preset and cell when the result is not a valid config."""
    data, _ = apply_preset(json.loads(json.dumps(base)), preset)
    kept, _ = split_overrides(preset, list(overrides))
    data = apply_overrides(data, kept)
    data = apply_overrides(data, [f"{k}={json.dumps(v)}" for k, v in (cell or {}).items()])
    data.update(seed=seed, out_dir=str(out_dir))
    data.setdefault("train", {}).update(max_steps=10**9, max_rollouts=budget)
    data.setdefault("eval", {}).update(
        before=True, after=True, every=0, every_rollouts=max(1, budget // eval_points), split=split
    )
    data.setdefault("logging", {}).update(progress=False, tensorboard=False)
    data.setdefault("checkpoint", {}).update(keep_last=1)  # the base's schedule bounds what a kill loses
    where = f"preset {preset}" + (f" at {cell_name(cell)}" if cell else "")
    return validate_config(data, where=f"the config of {where}")


@dataclass
class Plan:
    """Everything a study will run, before it runs. ``tuning`` holds the tuning runs; the evaluation runs depend
    on what tuning chooses, so the plan holds their count (``presets x eval seeds``) and :meth:`eval_runs` builds
    them once the choice is made."""

    base: dict
    presets: list[str]
    grid: dict[str, list]
    overrides: list[str]
    tune_seeds: list[int]
    seeds: list[int]
    budget: int
    eval_points: int
    out: Path
    tuning: list[Run] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Per preset, why a part it turns on cannot act within the budget (priorl.grpo.parts.idle_parts), each
    # sentence once; run_study refuses such a plan unless allow_inactive.
    inactive: dict[str, list[str]] = field(default_factory=dict)
    # Per preset, (training steps, evaluations including before and after) of its base-setting run.
    schedule: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Per preset, (problem draws a run makes, training problems): draws / problems is the visits per problem a
    # sampler has to learn from (at least, with dynamic sampling's extra rounds).
    visits: dict[str, tuple[int, int]] = field(default_factory=dict)
    criterion: str = "mean"  # how a tuning cell is scored over its seeds (priorl.study.stats.CRITERIA)

    @property
    def tunes(self) -> bool:
        """Whether the study has a tuning phase (tuning seeds given)."""
        return bool(self.tune_seeds)

    def cells(self, preset: str) -> list[dict]:
        """The grid cells ``preset`` is tuned over (its part of the grid: :func:`preset_grid`)."""
        return grid_cells(preset_grid(preset, self.grid))

    @property
    def n_runs(self) -> int:
        return len(self.tuning) + len(self.presets) * len(self.seeds)

    def run(self, phase: str, preset: str, cell: dict, seed: int) -> Run:
        split = "validation" if phase == "tune" else "test"
        out_dir = self.out / phase / preset.replace("+", "_") / cell_name(cell) / f"seed_{seed}"
        cfg = run_config(
            self.base, preset, overrides=self.overrides, cell=cell, seed=seed, budget=self.budget,
            eval_points=self.eval_points, out_dir=out_dir, split=split,
        )  # fmt: skip
        return Run(phase, preset, dict(cell), seed, cfg)

    def eval_runs(self, chosen: dict[str, dict]) -> list[Run]:
        """The evaluation runs: each preset at its chosen cell, on every evaluation seed."""
        return [self.run("eval", p, chosen[p], s) for p in self.presets for s in self.seeds]

    def describe(self) -> str:
        """The plan in words, printed before anything runs."""
        n_cells = {len(self.cells(p)) for p in self.presets}
        lines = []
        if self.tunes:
            cells = f"{n_cells.pop()} grid value(s)" if len(n_cells) == 1 else "their grid values"
            lines.append(
                f"plan: {len(self.presets)} presets x {cells} x {len(self.tune_seeds)} tuning seeds "
                f"+ {len(self.presets)} presets x {len(self.seeds)} evaluation seeds = {self.n_runs} runs, "
                f"{self.budget:,} completions each"
            )
            grid = "; ".join(f"{k} in {', '.join(fmt_value(v) for v in vs)}" for k, vs in self.grid.items())
            how = "the worst tuning seed's" if self.criterion == "worst" else "the seed-mean curve's"
            lines.append(
                f"  tuning: {grid or 'the base settings only'}, seeds {_seeds(self.tune_seeds)}, scored on the "
                f"validation split ({how} completions to the 90% target, --criterion {self.criterion}; area under the "
                "curve breaks ties)"
            )
            lines.append(
                f"  evaluation: each preset at its chosen value(s), seeds {_seeds(self.seeds)}, on the test split"
            )
        else:
            lines.append(
                f"plan: {len(self.presets)} presets x {len(self.seeds)} seeds = {self.n_runs} runs, {self.budget:,} "
                f"completions each, on the test split; no tuning (every preset at the base config's settings)"
            )
        lines.append(f"  presets: {', '.join(self.presets)}")
        lines += self._schedule_lines()
        lines += [f"  note: {n}" for n in self.notes]
        for preset, why in self.inactive.items():
            lines += [f"  will not act ({preset}): {w}" for w in why]
        return "\n".join(lines)

    def _schedule_lines(self) -> list[str]:
        """The evaluation schedule that will run: one evaluation per step at most, so a budget of few steps gets
        fewer points than asked."""
        every = max(1, self.budget // self.eval_points)
        by_shape: dict[tuple[int, int], list[str]] = {}
        for preset, shape in self.schedule.items():
            by_shape.setdefault(shape, []).append(preset)
        lines = []
        for (steps, evals), presets in by_shape.items():
            who = "" if len(by_shape) == 1 else f" ({', '.join(presets)})"
            fewer = (
                f"; fewer than the {self.eval_points + 1} asked: a run evaluates at most once a step"
                if evals < self.eval_points + 1
                else ""
            )
            lines.append(
                f"  schedule{who}: {steps} training steps; {evals} evaluations (before training, then every "
                f"{every:,} completions, and at the end){fewer}"
            )
        by_pool: dict[tuple[int, int], list[str]] = {}
        for preset, shape in self.visits.items():
            by_pool.setdefault(shape, []).append(preset)
        for (draws, pool), presets in by_pool.items():
            who = "" if len(by_pool) == 1 else f" ({', '.join(presets)})"
            lines.append(
                f"  visits{who}: {draws:,} problem draws a run over {pool:,} training problems, "
                f"{draws / pool:.2g} visits per problem"
            )
        return lines


def _seeds(seeds: list[int]) -> str:
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def make_plan(
    base: dict,
    *,
    presets: list[str],
    seeds: list[int],
    budget: int,
    out: str | Path,
    eval_points: int = MIN_EVAL_POINTS,
    grid: dict[str, list] | None = None,
    tune_seeds: list[int] | None = None,
    overrides: list[str] | None = None,
    criterion: str = "mean",
) -> Plan:
    """Check a study's inputs and build its plan (every tuning run's config is built, so a bad key or value is
    reported here, before anything runs). Raises ValueError (ConfigError) naming the problem."""
    from priorl.presets import BASELINE, unknown_preset

    unknown = [p for p in presets if p not in PRESETS]
    if unknown:
        raise ValueError("; ".join(unknown_preset(p) for p in unknown))
    if BASELINE not in presets:
        raise ValueError(f"--presets must include the baseline '{BASELINE}' (targets and ratios refer to it)")
    if len(set(presets)) != len(presets):
        raise ValueError(f"--presets {','.join(presets)}: a preset is listed twice")
    from priorl.study.stats import CRITERIA

    if criterion not in CRITERIA:
        raise ValueError(f"--criterion {criterion!r}: expected one of {', '.join(CRITERIA)}")
    grid = dict(grid or {})
    tune_seeds = list(tune_seeds or [])
    defaulted = False
    if grid and not tune_seeds:  # three seeds, apart from the evaluation seeds: two pick rates next to instability
        start = max([*seeds, 99]) + 1
        tune_seeds, defaulted = [start, start + 1, start + 2], True
    both = sorted(set(tune_seeds) & set(seeds))
    if both:
        raise ValueError(
            f"seeds {both} are both tuning and evaluation seeds: a setting chosen on a seed would then be scored on "
            "it again; use disjoint seeds (e.g. --tune-seeds 100,101 --seeds 0-4)"
        )
    overrides = list(overrides or [])
    owners = []
    for item in overrides:
        try:
            owners.append((f"--set {item}", split_key(item.split("=", 1)[0].strip())[0]))
        except ValueError as exc:
            raise ValueError(f"--set {item}: {exc}") from None
    owners += [(f"--grid {k}", split_key(k)[0]) for k in grid]
    absent = [flag for flag, owner in owners if owner is not None and owner not in presets]
    plan = Plan(base=base, presets=list(presets), grid=grid, overrides=overrides, tune_seeds=tune_seeds,
                seeds=list(seeds), budget=budget, eval_points=eval_points, out=Path(out),
                criterion=criterion)  # fmt: skip
    if absent:
        plan.notes.append(f"{', '.join(absent)} name(s) a preset not in --presets: unused")
    if defaulted:
        plan.notes.append(f"--tune-seeds not given: tuning on three seeds, {_seeds(tune_seeds)} (the default; two "
                          "seeds can choose a rate that one lucky seed makes look fast)")  # fmt: skip
    if eval_points < MIN_EVAL_POINTS:
        plan.notes.append(
            f"{eval_points} evaluation points: completions to a target are interpolated between evaluations "
            f"{budget // eval_points:,} completions apart (at least {MIN_EVAL_POINTS} points, every "
            f"1/{MIN_EVAL_POINTS} "
            "of the budget, are needed for the targets to be read off a fine curve; the report says so)"
        )
    if tune_seeds and (base.get("data") or {}).get("validation") is None:
        base.setdefault("data", {})["validation"] = "auto"
        plan.notes.append("data.validation is auto (the tuning runs are scored on it; both phases train on the same "
                          "problems)")  # fmt: skip
    for preset in presets:
        _, left = split_overrides(preset, overrides)
        if left:
            keys = ", ".join(item.split("=", 1)[0] for item in left)
            plan.notes.append(f"--set {keys} left out of {preset}'s runs: a part {preset} does not use")
        unused = [k for k in grid if split_key(k)[0] is None and k not in preset_grid(preset, grid)]
        if unused:
            plan.notes.append(f"--grid {', '.join(unused)} not tuned for {preset}: a part {preset} does not use")
    if tune_seeds:
        plan.tuning = [plan.run("tune", p, c, s) for p in presets for c in plan.cells(p) for s in tune_seeds]
    else:  # check every preset's config now, as the tuning runs' are
        for p in presets:
            plan.run("eval", p, {}, seeds[0])
    _check_parts(plan)
    return plan


def evaluations(config: RunConfig) -> tuple[int, int]:
    """``(training steps, held-out evaluations)`` of a run of ``config`` with its budget: the evaluation before
    training, those the schedule makes due (at most one a step) and the one at the end. Exact for runs that
    generate B x G completions a step; dynamic sampling may generate more a step."""
    from priorl.grpo.schedule import Schedule

    t, g, e = config.train, config.generation, config.eval
    per_step = t.batch_size * g.group_size
    steps = t.max_steps if t.max_rollouts is None else min(t.max_steps, -(-t.max_rollouts // per_step))
    schedule = Schedule(config)
    count = int(e.before)
    for step in range(1, steps + 1):
        due = schedule.eval_due(step, (step - 1) * per_step, step * per_step)
        count += int(due and step < steps) + int(step == steps and (e.after or due))
    return steps, count


def _check_parts(plan: Plan) -> None:
    """Fill ``plan.schedule`` and ``plan.inactive``: for each preset and each of its cells, the steps the budget
    allows and the parts that cannot act in them (:func:`priorl.grpo.parts.idle_parts`)."""
    from priorl.data.prepare import run_problems
    from priorl.grpo.parts import idle_parts

    sizes: dict[str, int] = {}
    for preset in plan.presets:
        cells = plan.cells(preset) if plan.tunes else [{}]
        seed = plan.tune_seeds[0] if plan.tunes else plan.seeds[0]
        per_cell: list[tuple[dict, list[str]]] = []
        for i, cell in enumerate(cells):
            cfg = plan.run("tune" if plan.tunes else "eval", preset, cell, seed).config
            steps, evals = evaluations(cfg)
            key = json.dumps(cfg.data.model_dump(mode="json"), sort_keys=True) + cfg.eval.split
            if key not in sizes:
                sizes[key] = len(run_problems(cfg).train)
            if i == 0:
                plan.schedule[preset] = (steps, evals)
                plan.visits[preset] = (steps * cfg.train.batch_size, sizes[key])
            per_cell.append((cell, idle_parts(cfg, steps, sizes[key], parts_only=True)))
            if cfg.train.lr_warmup_steps > steps and not any("lr_warmup_steps" in n for n in plan.notes):
                plan.notes.append(
                    f"train.lr_warmup_steps is {cfg.train.lr_warmup_steps}, longer than a run's {steps} steps: the "
                    "learning rate never reaches train.lr"
                )
        if all(why == per_cell[0][1] for _, why in per_cell):  # the same in every cell: said once
            found = list(per_cell[0][1])
        else:
            found = [f"at {cell_name(cell)}: {w}" for cell, why in per_cell for w in why]
        if found:
            plan.inactive[preset] = found


def instability_flags(grid: dict[str, list], chosen: dict, rows: list[dict]) -> list[str]:
    """For each numeric gridded key, a sentence when the cell one grid value above the chosen one (the other keys
    as chosen) collapsed on a tuning seed (its row's ``collapsed`` count, :func:`priorl.study.stats.collapsed`):
    the choice is next to instability, and a seed the tuning did not see may fall over the edge."""
    by_name = {cell_name(r["cell"]): r for r in rows}
    flags = []
    for key, values in grid.items():
        value = chosen.get(key)
        nums = sorted(v for v in values if is_number(v))
        if len(nums) != len(values) or value not in nums or value == nums[-1]:
            continue
        above = nums[nums.index(value) + 1]
        row = by_name.get(cell_name({**chosen, key: above}))
        if row is not None and row.get("collapsed"):
            n = row.get("seeds_ok", 0)
            flags.append(
                f"{key}={fmt_value(value)} is next to instability: the next value tried, {fmt_value(above)}, "
                f"collapsed on {row['collapsed']} of {n} tuning seed(s) (final validation accuracy far below its own "
                "best)"
            )
    return flags


def edge_flags(grid: dict[str, list], chosen: dict, flag_keys: dict[str, str] | None = None) -> list[str]:
    """For each numeric gridded key whose chosen value is the smallest or largest tried, a sentence naming the
    next value to add (the grid's own step beyond its end: geometric for positive values, else arithmetic).
    ``flag_keys`` maps a key to how ``--grid`` names it (:func:`grid_flag_keys`)."""
    flags = []
    flag_keys = flag_keys or {}
    for key, values in grid.items():
        value = chosen.get(key)
        nums = [v for v in values if is_number(v)]
        if len(nums) != len(values) or value not in nums:
            continue
        if len(nums) == 1:
            flags.append(f"{key}: a grid of one value ({fmt_value(value)}); nothing was tuned")
            continue
        ordered = sorted(nums)
        for end, inner, side in ((ordered[-1], ordered[-2], "largest"), (ordered[0], ordered[1], "smallest")):
            if value != end:
                continue
            if end > 0 and inner > 0:
                nxt = end * (end / inner)
            else:
                nxt = end + (end - inner)
            if isinstance(end, int) and isinstance(inner, int):
                nxt = int(round(nxt))
            elif isinstance(nxt, float):
                nxt = float(f"{nxt:.3g}")
            if not _within_bounds(key, nxt):
                continue  # the choice is at the key's own bound (e.g. 0 for a share): nothing lies beyond it
            flags.append(
                f"{key}={fmt_value(value)} is the {side} value tried: the best may lie beyond it; add "
                f"{fmt_value(nxt)} (--grid {flag_keys.get(key, key)}={','.join(fmt_value(v) for v in values)},"
                f"{fmt_value(nxt)} with "
                "--resume reuses every run done)"
            )
    return flags


def _within_bounds(key: str, value: float) -> bool:
    """Whether ``value`` is allowed for the config key ``key`` by its field's bounds (ge/gt/le/lt); unknown keys
    and fields without bounds allow anything."""
    from priorl import registry
    from priorl.config import RunConfig

    section, _, name = key.partition(".")
    if section in registry.PARTS and name in registry.option_kinds(section):  # a part's option: its field's bounds
        kind = registry.option_kinds(section)[name][0]
        return _field_allows(registry.part(section, kind).options.model_fields[name], value)
    model, field = RunConfig, None
    for part in key.split("."):
        fields = getattr(model, "model_fields", {})
        if part not in fields:
            return True
        field = fields[part]
        model = field.annotation
    return _field_allows(field, value)


def _field_allows(field, value: float) -> bool:
    for meta in getattr(field, "metadata", []):
        for name, ok in (("ge", value.__ge__), ("gt", value.__gt__), ("le", value.__le__), ("lt", value.__lt__)):
            bound = getattr(meta, name, None)
            if bound is not None and not ok(bound):
                return False
    return True


def is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
