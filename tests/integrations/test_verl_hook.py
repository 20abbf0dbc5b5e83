"""verl's own main_ppo and priorl's curriculum sampler: loaded by verl 0.5 - 0.7.x, ignored by 0.8+.

verl 0.8 removed the curriculum hook (create_rl_sampler ignores data.sampler, the trainer no longer calls
update); that is why priorl has its own entry point there. Both halves are checked against the installed verl.
"""

from __future__ import annotations

import importlib

import pytest

pytest.importorskip("verl")

from integrations.verl_helpers import M, Rows, data_config  # noqa: E402
from priorl.integrations.verl import PriorlCurriculumSampler, PriorlProblemSampler  # noqa: E402

try:
    from verl.experimental.dataset.sampler import AbstractCurriculumSampler
except ImportError:
    AbstractCurriculumSampler = None


def test_verls_create_rl_sampler_loads_it_where_the_hook_exists():
    if AbstractCurriculumSampler is not None:  # verl <= 0.7
        from verl.trainer.main_ppo import create_rl_sampler

        sampler = create_rl_sampler(data_config(retest_every=3), Rows())
        assert isinstance(sampler, PriorlCurriculumSampler)
        assert isinstance(sampler, AbstractCurriculumSampler)
        assert len(sampler) == M
        assert sampler.sampler.retest_every == 3
    else:  # verl >= 0.8: the data.sampler section is ignored, verl's own sampler comes back
        create_rl_sampler = importlib.import_module("verl.trainer.ppo.utils").create_rl_sampler
        sampler = create_rl_sampler(data_config(retest_every=3), Rows())
        assert not isinstance(sampler, PriorlProblemSampler)
        # the class stays importable (and usable as a plain sampler) for code written against 0.7
        assert isinstance(PriorlCurriculumSampler(Rows(), data_config()), PriorlProblemSampler)
