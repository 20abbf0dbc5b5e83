"""The registry of parts: every registered kind is known everywhere it must be, and a new sampler is one class, one
options model and one registry line (the toy sampler below runs end to end through the config and the trainer)."""

import inspect
import json
from pathlib import Path

import pytest
from pydantic import Field

from priorl import registry
from priorl.config import ConfigError, load_config
from priorl.grpo.parts import build_replay, build_sampler
from priorl.options import PartOptions
from priorl.presets import PRESETS

ROOT = Path(__file__).resolve().parents[1]
CONTEXT = {"num_problems", "seed", "levels", "codec"}  # what a builder passes besides the options


def all_parts():
    return [(section, kind, part) for section, table in registry.PARTS.items() for kind, part in table.items()]


@pytest.mark.parametrize(("section", "kind", "part"), all_parts(), ids=lambda x: x if isinstance(x, str) else "")
def test_the_options_model_is_the_constructors_keywords_with_their_defaults(section, kind, part):
    params = {n: p for n, p in inspect.signature(part.cls).parameters.items() if n not in CONTEXT}
    fields = part.options.model_fields
    assert set(params) == set(fields), f"{part.cls.__name__}'s keywords and {part.options.__name__} differ"
    for name, field in fields.items():
        assert params[name].default == field.default, f"{kind}: {name} defaults differ"
        assert field.description and len(field.description) > 10, f"{kind}: {name} has no description"


@pytest.mark.parametrize(("section", "kind", "part"), all_parts(), ids=lambda x: x if isinstance(x, str) else "")
def test_a_config_of_every_kind_builds_its_class(section, kind, part):
    other = "replay.kind=none" if section == "sampler" else "sampler.kind=uniform"
    cfg = load_config(None, [f"{section}.kind={kind}", other])
    built = build_sampler(cfg, 20, [i % 3 for i in range(20)]) if section == "sampler" else build_replay(cfg)
    assert type(built) is part.cls
    assert getattr(cfg, section).options() == part.options().model_dump()  # every option, at its default


def test_every_preset_names_registered_kinds_and_every_kind_is_documented():
    for name, overlay in PRESETS.items():
        assert overlay["sampler.kind"] in registry.kinds("sampler"), name
        assert overlay["replay.kind"] in registry.kinds("replay"), name
    config_md = (ROOT / "docs" / "config.md").read_text()
    for section in registry.PARTS:
        assert registry.options_markdown(section) in config_md, (
            f"docs/config.md's {section} table is out of date: paste the output of "
            f"python -c \"from priorl.registry import options_markdown; print(options_markdown('{section}'))\""
        )
    for _, kind, part in all_parts():
        assert f"`{kind}`" in config_md and part.cls.__name__ in config_md, kind


def test_the_benchmarks_and_the_verl_adapter_know_every_sampler_kind():
    pytest.importorskip("torch")
    from priorl.bench.sampler import run_sampler_bench, sampler_impls
    from priorl.integrations.verl.sampler import PriorlProblemSampler

    kinds = [k for k in registry.SAMPLERS if k != "uniform"]
    assert set(kinds) <= set(sampler_impls())
    rows = run_sampler_bench([64], batch_size=8, repeats=1, impls=tuple(kinds))
    assert [r["impl"] for r in rows] == kinds
    for kind, part in registry.SAMPLERS.items():
        verl = PriorlProblemSampler(list(range(16)), {"train_batch_size": 4}, options={"kind": kind})
        assert type(verl.sampler) is part.cls


# ---------------------------------------------------------------------------- a new sampler: one module, one line
class ToyOptions(PartOptions):
    """What a config may set on the toy sampler."""

    stride: int = Field(1, ge=1, description="the next batch starts this many problems after the last one's start")


class ToySampler:
    """Round-robin batches that start ``stride`` problems apart: the smallest thing that speaks the protocol."""

    def __init__(self, num_problems: int, *, seed: int = 0, stride: int = 1) -> None:
        self.num_problems, self.stride, self.start, self.observed = num_problems, stride, seed % num_problems, 0

    def sample(self, batch_size: int) -> list[int]:
        ids = [(self.start + i) % self.num_problems for i in range(batch_size)]
        self.start = (self.start + self.stride) % self.num_problems
        return ids

    def observe(self, problem_ids, rewards) -> None:
        self.observed += len(problem_ids)

    def state_dict(self) -> dict:
        return {"start": self.start, "observed": self.observed}

    def load_state_dict(self, state: dict) -> None:
        self.start, self.observed = int(state["start"]), int(state["observed"])

    def metrics(self) -> dict:
        return {"observed": self.observed}


@pytest.fixture
def toy(monkeypatch):
    # The one line a new sampler adds to priorl/registry.py's SAMPLERS (here for this test only):
    monkeypatch.setitem(registry.SAMPLERS, "toy", registry.Part(ToySampler, ToyOptions, "round-robin, for a test"))


def test_a_toy_sampler_registered_in_one_line_runs_end_to_end(toy, tmp_path):
    from priorl.grpo.trainer import Trainer

    overrides = [
        "model.path=builtin:tiny-arith", f"out_dir={tmp_path / 'run'}", "sampler.kind=toy", "sampler.stride=3",
        "replay.kind=none", "generation.group_size=4", "generation.max_new_tokens=6", "train.batch_size=4",
        "train.max_steps=2", "eval.before=false", "eval.after=false", "eval.during=0", "logging.tensorboard=false",
        "logging.progress=false",
    ]  # fmt: skip
    cfg = load_config(None, overrides)
    assert cfg.sampler.stride == 3 and "toy" in registry.options_markdown("sampler")
    trainer = Trainer(cfg)
    assert isinstance(trainer.sampler, ToySampler) and trainer.sampler.stride == 3
    trainer.train()
    trainer.close()
    last = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()][-1]
    assert last["step"] == 2 and last["sampler/observed"] == 8
    # its options are checked like any other kind's
    with pytest.raises(ConfigError, match=r"sampler.stride: Input should be greater than or equal to 1"):
        load_config(None, ["sampler.kind=toy", "sampler.stride=0"])
    with pytest.raises(ConfigError, match=r"sampler.candidates is set, but sampler.kind is 'toy'"):
        load_config(None, ["sampler.kind=toy", "sampler.candidates=3"])
    # and the benchmarks and the verl adapter take it without a change
    from priorl.bench.sampler import sampler_impls
    from priorl.integrations.verl.sampler import PriorlProblemSampler

    assert "toy" in sampler_impls()
    verl = PriorlProblemSampler(list(range(8)), {"train_batch_size": 2}, options={"kind": "toy", "stride": 2})
    assert isinstance(verl.sampler, ToySampler)


def test_an_unknown_kind_or_option_is_named_with_the_kinds_there_are():
    with pytest.raises(ConfigError, match=r"sampler.kind 'heap' is not a kind of sampler .*'prioritized'"):
        load_config(None, ["sampler.kind=heap"])
    with pytest.raises(ConfigError, match=r"unknown key 'replay.tau_maxx'; did you mean 'replay.tau_max'"):
        load_config(None, ["replay.tau_maxx=3"])
    with pytest.raises(ValueError, match=r"priorl.replay.alpha: not an option of replay kind 'adv-replay'"):
        registry.build_part("replay", "adv-replay", {"alpha": 0.5}, "priorl.replay", seed=0)
