"""End-to-end GRPO steps on the shipped tiny model, for every strategy; checkpoints; bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from priorl import registry
from priorl.config import load_config
from priorl.grpo.trainer import Trainer
from priorl.presets import PRESETS, preset_config, preset_of

HERE = Path(__file__).parent


MODEL = __import__("os").environ.get("PRIORL_TEST_MODEL", "builtin:tiny-arith")


def tiny_config(tmp_path, strategy="prioritized+adv-replay", **extra):
    """A 3-step run of preset ``strategy`` on the tiny model; ``extra`` are --set overrides."""
    overrides = [
        f"model.path={MODEL}",
        f"out_dir={tmp_path / strategy.replace('+', '_')}",
        "generation.group_size=4",
        "generation.max_new_tokens=6",
        "train.batch_size=4",
        "train.max_steps=3",
        "train.lr=1e-4",
        "replay.warmup_steps=1",
        "eval.before=false",
        "eval.after=false",
        "eval.during=0",
        "logging.tensorboard=false",
        "logging.progress=false",
        *[f"{k}={v}" for k, v in extra.items()],
    ]
    if PRESETS[strategy]["replay.kind"] == "none":  # replay options on a run without replay are refused
        overrides.remove("replay.warmup_steps=1")
    return preset_config(None, overrides, preset=strategy)


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


@pytest.mark.parametrize("strategy", list(PRESETS))
def test_every_preset_runs_end_to_end(tmp_path, strategy):
    cfg = tiny_config(tmp_path, strategy)
    trainer = Trainer(cfg)
    samplers = {kind: part.cls.__name__ for kind, part in registry.SAMPLERS.items()}
    buffers = {"none": "NoneType", **{kind: part.cls.__name__ for kind, part in registry.REPLAYS.items()}}
    assert type(trainer.sampler).__name__ == samplers[PRESETS[strategy]["sampler.kind"]]
    assert type(trainer.replay).__name__ == buffers[PRESETS[strategy]["replay.kind"]]
    assert preset_of(cfg) == strategy
    trainer.train()
    trainer.close()
    run = Path(cfg.out_dir)
    metrics = read_jsonl(run / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2, 3]
    for key in ("rollouts_generated", "tokens_generated", "reward_mean", "informative_fraction", "n_fresh",
                "n_replayed", "mean_replay_age", "loss", "clip_fraction", "verifier_errors", "time/generate",
                "time/score", "time/update", "sampler/informative_fraction", "updates", "behavior_logprob_gap",
                "tokens_trained", "tokens_forwarded"):  # fmt: skip
        assert key in metrics[-1], key
    batches = read_jsonl(run / "batches.jsonl")
    assert len(batches) == 3 and all(len(r) == 4 for b in batches for r in b["rewards"])
    if PRESETS[strategy]["dynamic_sampling.enabled"]:  # DAPO, or the K-of-B step: every round counts
        assert metrics[-1]["rollouts_generated"] == sum(m["groups_generated"] for m in metrics) * 4
        for m, b in zip(metrics, batches, strict=True):
            assert m["groups_generated"] >= m["groups_kept"] == len(b["problem_ids"])
    else:
        assert metrics[-1]["rollouts_generated"] == 3 * 4 * 4
        assert all(len(b["problem_ids"]) == 4 for b in batches)
    if "replay" in strategy:
        assert "replay/size" in metrics[-1]
        for m in metrics[1:]:  # from step 2 on (warmup 1), up to half the fresh count is replayed
            assert m["n_replayed"] <= round(0.5 * m["n_fresh"])
            assert m["mean_replay_age"] <= cfg.replay.options().get("tau_max", 3)  # naive: no age limit; 3 steps
    else:
        assert all(m["n_replayed"] == 0 for m in metrics)
    assert (run / "config.yaml").exists() and list((run / "checkpoints").iterdir())


def test_first_update_is_on_policy_and_behavior_logprobs_match_training(tmp_path):
    # The shipped model in float32: the log-probs recorded at generation and the training forward's agree.
    trainer = Trainer(tiny_config(tmp_path, "grpo", **{"train.max_steps": 2, "train.updates_per_step": 1}))
    trainer.train()
    trainer.close()
    for m in read_jsonl(Path(trainer.run_dir) / "metrics.jsonl"):
        assert m["updates"] == 1
        assert m["behavior_logprob_gap"] < 1e-4
        assert m["ratio_mean"] == pytest.approx(1.0, abs=1e-4) and m["clip_fraction"] == 0.0


def test_updates_per_step_takes_that_many_optimizer_steps(tmp_path):
    trainer = Trainer(tiny_config(tmp_path, "grpo", **{"train.max_steps": 2, "train.updates_per_step": 3}))
    calls = []
    trainer.optimizer.register_step_post_hook(lambda *_: calls.append(1))
    trainer.train()
    trainer.close()
    metrics = read_jsonl(Path(trainer.run_dir) / "metrics.jsonl")
    assert [m["updates"] for m in metrics] == [3, 3] and len(calls) == 6
    assert all(m["behavior_logprob_gap"] < 1e-4 for m in metrics)
    assert all(m["tokens_trained"] >= m["tokens_forwarded"] for m in metrics)


def _rollouts_with_zero_advantages(trainer):
    import numpy as np

    from priorl.grpo.advantages import group_advantages
    from priorl.types import Rollout

    problems = trainer.problems[:4]
    out = trainer.generator.generate([p.prompt for p in problems], 4)
    rewards = np.array([[1, 0, 1, 0], [1, 1, 1, 1], [0, 0, 1, 0], [0, 0, 0, 0]], dtype=float)
    adv = group_advantages(rewards)
    return [
        Rollout(problem_id=i // 4, prompt_ids=out.prompt_ids[i], completion_ids=out.completion_ids[i],
                behavior_logprobs=out.logprobs[i], reward=float(rewards.flat[i]), advantage=float(adv.flat[i]), step=1)
        for i in range(16)
    ]  # fmt: skip


@pytest.mark.parametrize("updates", [1, 3])
def test_skipping_zero_advantage_rollouts_leaves_the_update_unchanged(tmp_path, updates):
    import torch

    results = {}
    for skip in (True, False):
        cfg = tiny_config(
            tmp_path / str(skip), "grpo", **{"train.updates_per_step": updates, "train.micro_batch_size": 3}
        )
        torch.manual_seed(0)
        trainer = Trainer(cfg)
        trainer.skip_zero_advantage = skip
        # Plain SGD with lr 1: the weight change is the (clipped) gradient itself, so the comparison is of
        # gradients; Adam would blow float32 rounding in near-zero gradient entries up to lr-sized differences.
        params = [p for p in trainer.model.parameters() if p.requires_grad]
        trainer.optimizer = torch.optim.SGD(params, lr=1.0)
        trainer.scheduler = torch.optim.lr_scheduler.LambdaLR(trainer.optimizer, lambda s: 1.0)
        batch = _rollouts_with_zero_advantages(trainer)
        assert sum(r.advantage == 0.0 for r in batch) == 8
        trainer.step = 1
        stats = trainer._update(batch, n_fresh=len(batch))
        results[skip] = (stats, [p.detach().clone() for p in trainer.model.parameters()])
        trainer.close()
    (fast, w_fast), (full, w_full) = results[True], results[False]
    assert fast["tokens_forwarded"] < full["tokens_forwarded"] == full["tokens_trained"] == fast["tokens_trained"]
    assert fast["loss"] == pytest.approx(full["loss"], rel=1e-4, abs=1e-7)
    assert fast["updates"] == full["updates"] == updates
    for a, b in zip(w_fast, w_full, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_resume_continues_like_an_uninterrupted_run(tmp_path):
    full = tiny_config(tmp_path / "a", **{"train.max_steps": 4, "checkpoint.every": 2})
    t = Trainer(full)
    t.train()
    t.close()
    part = tiny_config(tmp_path / "b", **{"train.max_steps": 2})
    t = Trainer(part)
    t.train()
    t.close()
    resumed = part.model_copy(update={"train": part.train.model_copy(update={"max_steps": 4})})
    t = Trainer(resumed, resume=True)
    assert t.step == 2
    t.train()
    t.close()
    a = read_jsonl(Path(full.out_dir) / "batches.jsonl")
    b = read_jsonl(Path(part.out_dir) / "batches.jsonl")
    assert a == b
    ma, mb = read_jsonl(Path(full.out_dir) / "metrics.jsonl"), read_jsonl(Path(part.out_dir) / "metrics.jsonl")
    assert [m["step"] for m in mb] == [1, 2, 3, 4]
    for x, y in zip(ma, mb, strict=True):
        assert x["rollouts_generated"] == y["rollouts_generated"] and x["n_replayed"] == y["n_replayed"]
        assert x["loss"] == pytest.approx(y["loss"], abs=1e-6)


def test_raising_verifier_scores_zero_and_training_goes_on(tmp_path):
    cfg = tiny_config(tmp_path, "grpo", **{"verifier.name": f"{HERE / 'flaky_verifier.py'}:score"})
    trainer = Trainer(cfg)
    trainer.train()
    trainer.close()
    metrics = read_jsonl(Path(cfg.out_dir) / "metrics.jsonl")
    assert len(metrics) == 3
    assert sum(m["verifier_errors"] for m in metrics) > 0


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "priorl.cli", *args], capture_output=True, text=True, timeout=600)


def test_bad_dataset_stops_before_training_with_one_clear_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "1+1=", "answer": "2"}\n{"prompt": "2+2=" \n')
    out_dir = tmp_path / "run"
    proc = run_cli("train", "--data", str(bad), "--out", str(out_dir), "--max-steps", "1")
    assert proc.returncode == 2
    assert "bad.jsonl" in proc.stderr and "line 2" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (out_dir / "metrics.jsonl").exists()


def test_unknown_config_key_is_named(tmp_path):
    proc = run_cli("train", "--set", "train.learning_rate=1", "--out", str(tmp_path / "r"))
    assert proc.returncode == 2 and "unknown key 'train.learning_rate'" in proc.stderr


def test_beta_thompson_sampler_gets_the_data_levels(tmp_path):
    cfg = tiny_config(
        tmp_path,
        "experimental-beta",
        **{
            "sampler.estimator": "beta",
            "sampler.selection": "thompson",
            "train.max_steps": 2,
        },
    )
    trainer = Trainer(cfg)
    levels = {p.level for p in trainer.problems}
    assert len(levels) > 1 and trainer.sampler._estimator.priors.num_levels == len(levels)
    trainer.train()
    trainer.close()
    metrics = read_jsonl(Path(cfg.out_dir) / "metrics.jsonl")
    assert len(metrics) == 2 and 0.0 < metrics[-1]["sampler/prior_mean"] < 1.0


def test_pass_sampler_runs_and_logs_coverage(tmp_path):
    cfg = tiny_config(
        tmp_path, "prioritized", **{"sampler.kind": "prioritized-pass", "sampler.candidates": 2, "train.max_steps": 3}
    )
    trainer = Trainer(cfg)
    assert type(trainer.sampler).__name__ == "PrioritizedPassSampler" and trainer.sampler.candidates == 2.0
    trainer.train()
    trainer.close()
    metrics = read_jsonl(Path(cfg.out_dir) / "metrics.jsonl")
    last = metrics[-1]
    assert last["sampler/calls"] == 3 and "sampler/skipped" in last
    assert last["coverage/p99_visits"] <= last["coverage/max_visits"] == 1  # 12 of many problems, none twice
    shares = [v for k, v in last.items() if k.startswith("coverage/share_level_")]
    assert shares and sum(shares) == pytest.approx(1.0)


def test_sampler_keys_of_the_other_kind_are_refused_by_name():
    from priorl.config import ConfigError

    with pytest.raises(
        ConfigError,
        match=r"sampler.estimator is set, but sampler.kind is 'prioritized-pass'.*"
        r"set sampler.kind to experimental-prioritized",
    ):
        load_config(None, ["sampler.kind=prioritized-pass", "sampler.estimator=beta"])
    with pytest.raises(
        ConfigError,
        match=r"sampler.candidates, sampler.decay are set, but sampler.kind is 'prioritized'.*"
        r"set sampler.kind to prioritized-pass",
    ):
        load_config(None, ["sampler.kind=prioritized", "sampler.candidates=3", "sampler.decay=0.5"])
    with pytest.raises(ConfigError, match="sampler.kind"):
        load_config(None, ["sampler.kind=sorted"])
