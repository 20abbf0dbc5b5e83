"""Every example config in configs/ is valid as written: its keys, its data files, its prompt template."""

from pathlib import Path

import pytest

from priorl.config import ModelConfig, load_config
from priorl.data import PromptFormatter, load_problems
from priorl.models import load_tokenizer

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_example_config_is_runnable_as_written(path, monkeypatch):
    monkeypatch.chdir(ROOT)  # configs name files relative to the repository root, where they are run
    cfg = load_config(path)
    keys = dict(prompt_key=cfg.data.prompt_key, answer_key=cfg.data.answer_key, level_key=cfg.data.level_key)
    for spec in (cfg.data.train, cfg.data.test):
        if spec is not None:
            assert load_problems(spec, **keys), spec
    # The prompt format renders (with the tiny tokenizer standing in when the config's model is not local).
    tok = load_tokenizer(ModelConfig(path="builtin:tiny-arith"))
    if cfg.data.chat_template not in ("auto", "none"):
        text = PromptFormatter(tok, cfg.data.chat_template, cfg.data.system_prompt).render("1 + 1?")
        assert "1 + 1?" in text


def test_there_are_example_configs():
    assert {p.name for p in CONFIGS} >= {"demo.yaml", "qwen3-0.6b-math.yaml", "smollm2-arith.yaml"}


@pytest.mark.parametrize("name", ["study.yaml", "study-r7.yaml", "study-r3.yaml"])
def test_the_study_configs_train(name, tmp_path, monkeypatch):
    """The study testbed and the superseded ones (kept so that earlier rounds' commands reproduce) all still run."""
    from priorl.grpo.trainer import Trainer

    monkeypatch.chdir(ROOT)
    cfg = load_config(
        ROOT / "configs" / name,
        [f"out_dir={tmp_path / 'run'}", "train.max_steps=1", "train.max_rollouts=null", "train.batch_size=4",
         "generation.group_size=2", "eval.max_problems=4", "logging.tensorboard=false", "logging.progress=false",
         "replay.warmup_steps=0"],
    )  # fmt: skip
    trainer = Trainer(cfg)
    try:
        trainer.train()
    finally:
        trainer.close()
    assert (tmp_path / "run" / "summary.json").exists()
