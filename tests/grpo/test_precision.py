"""model.precision: bf16-mixed (float32 master weights, bf16 autocast compute, float32 head), its rules, its
faithfulness (the first mini-batch's ratios) and resume exactness, on the shipped tiny model."""

import json
from pathlib import Path

import pytest
import torch

from priorl.config import ConfigError, load_config
from priorl.grpo.trainer import Trainer
from priorl.precision import Precision, fast_bf16, keep_head_float32, machine_record, resolve_precision

from .test_trainer import MODEL, read_jsonl, tiny_config

CPU_BF16, _ = fast_bf16(torch.device("cpu"))


def test_bf16_mixed_with_non_float32_weights_is_refused_naming_both_keys():
    with pytest.raises(ConfigError, match="model.precision is bf16-mixed.*model.dtype is 'bfloat16'"):
        load_config(None, ["model.precision=bf16-mixed", "model.dtype=bfloat16"])
    assert load_config(None, ["model.precision=bf16-mixed"]).model.dtype == "float32"
    assert load_config(None, []).model.precision == "fp32"  # the default


def test_a_device_without_fast_bf16_falls_back_to_fp32_and_says_so(monkeypatch):
    monkeypatch.setattr("priorl.precision.cpu_bf16_flags", lambda: [])
    precision, warning = resolve_precision("bf16-mixed", torch.device("cpu"))
    assert precision.name == "fp32" and "no fast bfloat16" in warning and "uses fp32" in warning
    assert resolve_precision("fp32", torch.device("cpu")) == (Precision("fp32", "cpu"), None)


def test_the_head_computes_in_float32_under_autocast_and_the_state_dict_is_unchanged(model):
    keys = list(model.state_dict())
    ids = torch.tensor([[1, 2, 3]])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(input_ids=ids).logits.dtype == torch.bfloat16  # what autocast alone gives
    assert keep_head_float32(model)
    assert keep_head_float32(model)  # idempotent
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(input_ids=ids).logits.dtype == torch.float32
    assert list(model.state_dict()) == keys
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay float32


def test_pure_bf16_training_warns_that_small_updates_are_lost(tmp_path):
    trainer = Trainer(tiny_config(tmp_path, "grpo", **{"model.dtype": "bfloat16", "train.max_steps": 1}))
    trainer.train()
    trainer.close()
    warnings = json.loads((Path(trainer.run_dir) / "summary.json").read_text())["warnings"]
    assert any("model.dtype is bfloat16" in w and "bf16-mixed" in w for w in warnings)


@pytest.mark.skipif(not CPU_BF16, reason="this CPU has no fast bfloat16: bf16-mixed falls back to fp32 here")
def test_bf16_mixed_trains_with_float32_master_weights_and_exact_first_ratios(tmp_path):
    cfg = tiny_config(tmp_path, "adv-replay", **{"model.precision": "bf16-mixed", "train.updates_per_step": 2,
                                                 "train.old_logprobs": "recompute"})  # fmt: skip
    trainer = Trainer(cfg)
    assert trainer.precision.mixed and trainer.recompute_old_logprobs
    trainer.train()
    trainer.close()
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    assert all(s["exp_avg"].dtype == torch.float32 for s in trainer.optimizer.state.values())
    for m in read_jsonl(Path(cfg.out_dir) / "metrics.jsonl"):
        # Recomputed in the update's own micro-batches: before the first optimizer step the ratio is exactly 1.
        assert m["behavior_logprob_gap"] == 0.0 and m["behavior_clip_fraction"] == 0.0
    summary = json.loads((Path(cfg.out_dir) / "summary.json").read_text())
    assert summary["precision"] == "bf16-mixed" and summary["old_logprobs"] == "recompute"
    assert summary["machine"]["precision"] == "bf16-mixed" and summary["machine"]["torch"] == torch.__version__


@pytest.mark.skipif(not CPU_BF16, reason="this CPU has no fast bfloat16: bf16-mixed falls back to fp32 here")
def test_bf16_mixed_generation_runs_under_autocast_and_its_logprobs_are_kept_with_behavior(tmp_path):
    from priorl.grpo.stack import build_generator, build_policy

    logprobs = {}
    for precision in ("fp32", "bf16-mixed"):
        cfg = load_config(None, [f"model.path={MODEL}", f"model.precision={precision}"])
        policy = build_policy(cfg)
        torch.manual_seed(0)
        logprobs[precision] = build_generator(cfg, policy).generate(["12+7="], 4).logprobs
    first = [(a[0], b[0]) for a, b in zip(logprobs["fp32"], logprobs["bf16-mixed"], strict=True)]
    assert any(a != b for a, b in first) and all(abs(a - b) < 0.1 for a, b in first)  # bf16 compute, close
    cfg = tiny_config(tmp_path, "grpo", **{"model.precision": "bf16-mixed"})
    trainer = Trainer(cfg)
    assert not trainer.recompute_old_logprobs  # the default: generation's log-probs
    trainer.train()
    trainer.close()
    metrics = read_jsonl(Path(cfg.out_dir) / "metrics.jsonl")
    assert all(0.0 <= m["behavior_logprob_gap"] < 0.1 for m in metrics)


@pytest.mark.skipif(not CPU_BF16, reason="this CPU has no fast bfloat16: bf16-mixed falls back to fp32 here")
def test_bf16_mixed_resume_continues_like_an_uninterrupted_run(tmp_path):
    extra = {"model.precision": "bf16-mixed"}
    full = tiny_config(tmp_path / "a", **extra, **{"train.max_steps": 4, "checkpoint.every": 2})
    t = Trainer(full)
    t.train()
    t.close()
    part = tiny_config(tmp_path / "b", **extra, **{"train.max_steps": 2})
    t = Trainer(part)
    t.train()
    t.close()
    resumed = part.model_copy(update={"train": part.train.model_copy(update={"max_steps": 4})})
    t2 = Trainer(resumed, resume=True)
    t2.train()
    t2.close()
    assert read_jsonl(Path(full.out_dir) / "batches.jsonl") == read_jsonl(Path(part.out_dir) / "batches.jsonl")
    a = Trainer(full, resume=True)
    for (name, x), y in zip(a.model.state_dict().items(), t2.model.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
    a.close()


def test_a_resume_under_another_precision_is_refused(tmp_path):
    cfg = tiny_config(tmp_path, "grpo", **{"train.max_steps": 1})
    t = Trainer(cfg)
    t.train()
    t.close()
    other = load_config(Path(cfg.out_dir) / "config.yaml", ["model.precision=bf16-mixed"])
    with pytest.raises(ConfigError, match="model.precision"):
        Trainer(other, resume=True)


def test_machine_record_names_the_cpu_threads_and_versions():
    record = machine_record(Precision("fp32"))
    assert record["precision"] == "fp32" and record["torch_threads"] >= 1 and record["cores"] >= 1
    assert isinstance(record["cpu"], str) and isinstance(record["cpu_bf16"], list) and record["transformers"]
