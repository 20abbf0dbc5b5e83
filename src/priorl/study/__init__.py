"""The comparison harness (``priorl compare``): every preset tuned on validation data, then compared on test data
at an equal budget of generated completions, with paired bootstrap intervals over seeds.

Above the trainer (each run is a :class:`~priorl.grpo.trainer.Trainer` run) and below the CLI:

- :mod:`priorl.study.request`: a ``priorl compare`` command's options (and a resumed study's record) as a plan;
- :mod:`priorl.study.plan`: seeds, the tuning grid, the config of every run, the plan;
- :mod:`priorl.study.pool`: running runs in this process or in workers, signals, :class:`StudyInterrupted`;
- :mod:`priorl.study.records`: reading run directories and ``study.json`` (the one reader, public);
- :mod:`priorl.study.record`: writing ``study.json`` and the checks that let ``--resume`` continue a study;
- :mod:`priorl.study.stats`: curves, completions to a target, the criterion, BCa and t intervals;
- :mod:`priorl.study.runner`: :func:`run_study`, the choice per preset and ``summary.json``;
- :mod:`priorl.study.report`: ``report.md`` and the plots;
- :mod:`priorl.study.console`: what ``priorl compare`` prints while a study runs and at its end.

``import priorl.study`` imports neither torch nor matplotlib.
"""

from priorl.study.plan import MIN_EVAL_POINTS, Plan, make_plan, parse_grid, parse_seeds, run_config
from priorl.study.pool import StudyInterrupted
from priorl.study.record import provenance
from priorl.study.records import load_study
from priorl.study.runner import run_study

__all__ = [
    "MIN_EVAL_POINTS",
    "Plan",
    "StudyInterrupted",
    "load_study",
    "make_plan",
    "parse_grid",
    "parse_seeds",
    "provenance",
    "run_config",
    "run_study",
]
