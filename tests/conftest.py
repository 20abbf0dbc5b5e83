"""Shared test settings: hypothesis profiles sized for a 2-core machine, and the shipped tiny model."""

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("default", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "ci", max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci" if os.environ.get("CI") else "default")


@pytest.fixture(scope="module")
def tok():
    """The shipped tiny-arith tokenizer (a module may define its own ``tok``)."""
    from priorl.config import ModelConfig
    from priorl.models import load_tokenizer

    return load_tokenizer(ModelConfig(path="builtin:tiny-arith", device="cpu"))


@pytest.fixture
def model():
    """A fresh copy of the shipped tiny-arith model, for tests that change it."""
    from priorl.config import ModelConfig
    from priorl.models import load_policy

    return load_policy(ModelConfig(path="builtin:tiny-arith", device="cpu"))
