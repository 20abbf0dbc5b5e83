"""What a ``priorl compare`` command asks for, as a plan: the options given, and for a resumed study its recorded
inputs filling in what was left out (``OUT/study.json``).

The CLI parses; this module decides. Raises ``ValueError`` (or :class:`~priorl.config.ConfigError`) naming the
option for a contradiction or a bad value, before anything runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from priorl.study.plan import Plan

DEFAULT_OUT = "runs/compare"
DEFAULT_SEEDS = [0, 1, 2]
DEFAULT_TARGETS = [0.5, 0.75, 0.9]
DEFAULT_BUDGET = 81920  # when neither the study nor the base config (train.max_rollouts) has one
DEFAULT_EVAL_POINTS = 32


@dataclass
class StudyRequest:
    """A study ready to run: its plan and what :func:`priorl.study.run_study` takes besides."""

    plan: Plan
    out: Path
    targets: tuple[float, ...]
    target_kind: str
    primary: str | None
    allow_inactive: bool
    drop_checkpoints: bool
    resume: bool
    overwrite: bool


def study_request(
    *,
    presets: str | None = None,
    seeds: str | None = None,
    num_seeds: int | None = None,
    tune_seeds: str | None = None,
    grid: list[str] | None = None,
    budget: int | None = None,
    config: str | None = None,
    overrides: list[str] | None = None,
    eval_points: int | None = None,
    targets: str | None = None,
    target_kind: str | None = None,
    primary: str | None = None,
    out: str | None = None,
    resume: str | None = None,
    overwrite: bool = False,
    criterion: str | None = None,
    allow_inactive: bool = False,
    drop_checkpoints: bool | None = None,
) -> StudyRequest:
    """The plan of a ``priorl compare`` command (its options as the CLI spells them, unparsed). An option left out
    (None, or False for ``allow_inactive``) takes the resumed study's recorded value, else the default; a resume's
    ``grid`` replaces the values of the keys it names and keeps the recorded others (:func:`merge_grid`)."""
    from priorl.presets import DEFAULT_PRESETS
    from priorl.study.plan import make_plan, merge_grid, parse_grid, parse_seeds
    from priorl.study.records import load_study
    from priorl.study.stats import DEFAULT_CRITERION

    recorded: dict = {}
    if resume is not None:
        if overwrite:
            raise ValueError("--resume continues a study and --overwrite replaces it: pass one of them")
        if out is not None and Path(out).resolve() != Path(resume).resolve():
            raise ValueError(
                f"--out {out} and --resume {resume} name different directories; a resumed study stays in its own"
            )
        out = resume
        study = load_study(resume)
        recorded = study["inputs"] if study is not None else {}
        if study is not None and config is None:
            _check_recorded_base(resume, study)
    if seeds is not None and num_seeds is not None:
        raise ValueError("--seeds and --num-seeds both given: pass one of them")
    base = _base_config(config, recorded)
    if num_seeds is not None:
        seed_list = list(range(num_seeds))
    else:
        seed_list = parse_seeds(seeds) if seeds is not None else recorded.get("seeds") or list(DEFAULT_SEEDS)
    tune_list = parse_seeds(tune_seeds, "--tune-seeds") if tune_seeds is not None else recorded.get("tune_seeds", [])
    names = [p.strip() for p in presets.split(",") if p.strip()] if presets is not None else None
    if budget is None:  # the study's recorded budget, else the base config's own (train.max_rollouts)
        budget = recorded.get("budget") or (base.get("train") or {}).get("max_rollouts") or DEFAULT_BUDGET
    plan = make_plan(
        base,
        presets=names or recorded.get("presets") or list(DEFAULT_PRESETS),
        seeds=seed_list,
        budget=budget,
        out=Path(out or DEFAULT_OUT),
        eval_points=eval_points if eval_points is not None else recorded.get("eval_points", DEFAULT_EVAL_POINTS),
        grid=merge_grid(recorded.get("grid") or {}, parse_grid(grid or [])),
        tune_seeds=tune_list,
        overrides=list(overrides) if overrides is not None else list(recorded.get("overrides") or []),
        criterion=criterion or recorded.get("criterion", DEFAULT_CRITERION),
    )
    return StudyRequest(
        plan=plan,
        out=Path(out or DEFAULT_OUT),
        targets=tuple(_targets(targets) if targets is not None else recorded.get("targets") or DEFAULT_TARGETS),
        target_kind=target_kind or recorded.get("target_kind", "gain"),
        primary=primary or recorded.get("primary"),
        allow_inactive=allow_inactive or bool(recorded.get("allow_inactive")),
        drop_checkpoints=bool(recorded.get("drop_checkpoints")) if drop_checkpoints is None else drop_checkpoints,
        resume=resume is not None,
        overwrite=overwrite,
    )


def _base_config(config: str | None, recorded: dict) -> dict:
    """The base config as a dict: the recorded one of a resumed study unless ``--config`` is given, else the file
    (default: the shipped study config), its paths resolved."""
    from priorl.config import load_config, resolve_paths

    if config is None and recorded.get("base_config") is not None:
        return recorded["base_config"]
    from priorl.assets import config_path

    return resolve_paths(load_config(config or config_path("study"))).model_dump(mode="json")


def _check_recorded_base(out, study: dict) -> None:
    """Refuse, naming the commit that recorded it, a resumed study whose recorded base config this priorl cannot
    read (a config key renamed or removed since): its runs would not be the same runs."""
    from priorl.config import ConfigError, validate_config

    try:
        validate_config(json.loads(json.dumps(study["inputs"]["base_config"])), where=f"{out}/study.json")
    except ConfigError as exc:
        commits = [s.get("git_commit") for s in study.get("sessions", []) if s.get("git_commit")]
        how = (
            f"resume it with the code it ran with, commit {commits[-1][:10]} (e.g. git worktree add ../priorl-"
            f"{commits[-1][:7]} {commits[-1][:10]}, then PYTHONPATH=../priorl-{commits[-1][:7]}/src priorl compare "
            f"--resume {out})"
            if commits
            else "resume it with the priorl version it ran with"
        )
        raise ConfigError(
            f"{exc}: the study was recorded by a priorl whose config keys differ from this one's; {how}. Its "
            "finished runs' logs are read without it (benchmarks/cross_study_ratio.py, benchmarks/cost_table.py)"
        ) from None


def _targets(text: str) -> list[float]:
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"--targets {text!r}: expected numbers, e.g. 0.5,0.75,0.9") from None
