"""Writing a study's record, ``OUT/study.json``: what it was started with (its inputs) and what produced it
(priorl version, git commit), and the checks that let ``--resume`` continue it only as the same study. Reading
records: :mod:`priorl.study.records`.

A resumed study may add presets, grid values, tuning seeds or evaluation seeds (the runs already done are
reused: a run's directory is named by its preset, grid values and seed); it may not change the base config, the
``--set`` overrides, the budget, the evaluation points or the targets, which every run depends on. A run whose
saved config differs from the one the plan gives it is refused by name.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from priorl.config import RunConfig
from priorl.study.records import STUDY

STUDY_FILES = (
    STUDY, "summary.json", "report.md", "accuracy_vs_rollouts.png", "informative_fraction.png", "sampler_pools.png",
    "replay_age.png", "sensitivity.png", "tuning_curves.png",
)  # fmt: skip
# Inputs every run depends on: a resumed study must be given the same (presets, grid and seeds may grow).
FIXED_INPUTS = ("base_config", "overrides", "budget", "eval_points", "targets", "target_kind", "primary")


# Keys of a run's config that a resumed study may find changed in the run's saved config.yaml: where the run is,
# and what alters no saved state and nothing training does (see priorl.config.SAFE_RESUME_CHANGES).
_RUN_KEYS_FREE = ("out_dir", "checkpoint.", "logging.")


def provenance() -> dict:
    """What produced a study: ``priorl_version``, and ``git_commit`` / ``git_dirty`` of the checkout priorl is
    imported from (None when it is not imported from a git checkout, e.g. an installed wheel)."""
    import priorl

    commit = dirty = None
    package = Path(priorl.__file__).resolve().parent
    try:
        top, head = _git(package, "rev-parse", "--show-toplevel", "HEAD").split()
        # only priorl's own repository: not one that merely contains an installed copy (a venv inside a project)
        if (Path(top) / "src" / "priorl").resolve() == package:
            commit = head
            dirty = bool(_git(package, "status", "--porcelain", "--untracked-files=no").strip())
    except (OSError, ValueError, subprocess.SubprocessError):
        pass
    return {"priorl_version": priorl.__version__, "git_commit": commit, "git_dirty": dirty}


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
    ).stdout  # fmt: skip


def _flat(d: dict, prefix: str = "") -> dict:
    out: dict = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _changes(old: dict, new: dict, *, free: tuple[str, ...] = ()) -> list[tuple[str, object, object]]:
    """(dotted key, old value, new value) for each key that differs, except the ``free`` ones (prefixes)."""
    a, b = _flat(old), _flat(new)
    missing = "(unset)"
    return [
        (k, a.get(k, missing), b.get(k, missing))
        for k in sorted(set(a) | set(b))
        if a.get(k, missing) != b.get(k, missing) and not k.startswith(free)
    ]


def _show(key: str, old, new) -> str:
    def short(v) -> str:
        text = json.dumps(v) if not isinstance(v, str) else v
        return text if len(text) <= 60 else text[:57] + "..."

    return f"{key} ({short(old)} there, {short(new)} now)"


def write_study(out: Path, study: dict) -> None:
    from priorl.statefile import write_atomic

    write_atomic(out / STUDY, (json.dumps(study, indent=2) + "\n").encode())


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def check_inputs(out: Path, study: dict, inputs: dict) -> None:
    """Refuse a resume whose fixed inputs (:data:`FIXED_INPUTS`) differ from the recorded study's, naming the keys."""
    recorded = study["inputs"]
    changed = []
    for key in FIXED_INPUTS:
        if key not in recorded:
            continue
        old, new = recorded[key], inputs[key]
        if key == "base_config":
            changed += [_show(k, a, b) for k, a, b in _changes(old, new, free=("out_dir",))]
        elif old != new:
            changed.append(_show(key, old, new))
    if changed:
        raise ValueError(
            f"--resume {out}: the study there was started with other inputs: {'; '.join(changed)}. A resumed study "
            "may add presets, grid values and seeds, but every run depends on these: pass the same options or leave "
            "them out (the recorded ones apply); for a different study choose another --out"
        )


def study_machine(base: dict) -> dict:
    """Where this session of a study runs (:func:`priorl.precision.machine_record`) and the precision the study's
    base config resolves to here (``bf16-mixed`` falls back to ``fp32`` on a device without fast bfloat16)."""
    import torch

    from priorl.models import resolve_device
    from priorl.precision import machine_record, resolve_precision

    model = base.get("model") or {}
    device = resolve_device(str(model.get("device", "auto")))
    precision, _ = resolve_precision(str(model.get("precision", "fp32")), device)
    return {**machine_record(precision), "device": str(device), "cuda": torch.version.cuda}


def check_machine(out: Path, study: dict, machine: dict) -> list[str]:
    """Refuse a resume whose torch version or resolved precision differs from an earlier session's (the runs would
    not be the same computation); return notes for a resume on another CPU or GPU, which continues (runs are not
    bit-identical across machines, so report.md marks where each ran)."""
    earlier = [s["machine"] for s in study.get("sessions", []) if s.get("machine")]
    for old in earlier:
        for key in ("torch", "precision"):
            if old.get(key) != machine.get(key):
                raise ValueError(
                    f"--resume {out}: an earlier session ran with {key} {old.get(key)!r}, this machine has "
                    f"{machine.get(key)!r}; the runs would not be the same computation. Resume it where {key} is "
                    f"{old.get(key)!r}, or start a new study"
                )
    notes = []
    seen = {(m.get("cpu"), m.get("gpu"), tuple(m.get("cpu_bf16") or ())) for m in earlier}
    here = (machine.get("cpu"), machine.get("gpu"), tuple(machine.get("cpu_bf16") or ()))
    if earlier and here not in seen:
        notes.append(
            f"this session runs on another machine ({machine.get('cpu')}, {machine.get('gpu') or 'no GPU'}) than "
            f"earlier ones ({'; '.join(sorted({str(m.get('cpu')) for m in earlier}))}): runs are not bit-identical "
            "across machines; report.md lists where each run ran"
        )
    return notes


def check_run_config(out: Path, cfg: RunConfig) -> None:
    """Refuse to continue or reuse a run whose saved ``config.yaml`` differs from the config the plan gives it."""
    import yaml

    saved_path = Path(cfg.out_dir) / "config.yaml"
    if not saved_path.is_file():
        return
    try:
        saved = yaml.safe_load(saved_path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"--resume {out}: cannot read {saved_path} ({exc})") from None
    try:  # with every key filled in: a key added to priorl since (at its default) changes nothing
        saved = RunConfig.model_validate(saved or {}).model_dump(mode="json")
    except ValueError:
        saved = saved or {}  # (a config this priorl cannot read: compared as written, so the keys get named)
    changed = _changes(saved, cfg.model_dump(mode="json"), free=_RUN_KEYS_FREE)
    if changed:
        raise ValueError(
            f"--resume {out}: the run in {cfg.out_dir} was started with another config: "
            f"{'; '.join(_show(k, a, b) for k, a, b in changed)}; it cannot be continued as part of this study"
        )
