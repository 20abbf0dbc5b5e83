"""Runs people can trust and read: run directories and ids, resuming, stopping, progress, summaries, flags."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from priorl import faults
from priorl.config import ConfigError, load_config
from priorl.data.split import held_out_split
from priorl.grpo import checkpoint as ckpt
from priorl.grpo.progress import Reporter
from priorl.grpo.rundir import RunDirectoryError
from priorl.grpo.trainer import Trainer, TrainingInterrupted
from priorl.presets import preset_config
from priorl.types import Problem

from .test_trainer import HERE, read_jsonl, tiny_config

SMALL = [
    "--batch-size", "4", "--group-size", "4", "--set", "generation.max_new_tokens=6", "--set", "train.lr=1e-4",
    "--set", "replay.warmup_steps=1", "--set", "logging.tensorboard=false",
]  # fmt: skip


def priorl(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("PRIORL_FAULT", None)
    src = str(Path(__file__).resolve().parents[2] / "src")  # this checkout, from any working directory
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "priorl.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=cwd)


def run_steps(cfg, **kw) -> Trainer:
    trainer = Trainer(cfg, **kw)
    try:
        trainer.train()
    finally:
        trainer.close()
    return trainer


# ---------------------------------------------------------------- item 1: one run per directory


def test_fresh_run_into_a_used_directory_is_refused_and_overwrite_clears_only_run_files(tmp_path):
    cfg = tiny_config(tmp_path, "grpo", **{"train.max_steps": 2, "train.lr": 1e-3})
    first = run_steps(cfg)
    run = Path(cfg.out_dir)
    (run / "notes.txt").write_text("mine")
    assert ckpt.read_trainer_state(ckpt.list_checkpoints(run)[-1])["run_id"] == first.run_id

    again = tiny_config(tmp_path, "grpo", **{"train.max_steps": 1, "train.lr": 1e-5})
    with pytest.raises(RunDirectoryError, match=r"already holds a run .*--resume .*--overwrite"):
        Trainer(again)
    second = run_steps(again, overwrite=True)
    assert {"config.yaml", "run.json", "metrics.jsonl", "checkpoints/"} <= set(second.cleared)
    assert second.run_id != first.run_id
    assert (run / "notes.txt").read_text() == "mine"  # not priorl's: kept
    assert [m["step"] for m in read_jsonl(run / "metrics.jsonl")] == [1]  # nothing of the old run is left
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["step_000001"]
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["lr"] == 1e-5


def test_cli_names_resume_and_overwrite_for_a_used_directory(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("seed: 0\n")
    proc = priorl("train", "--out", str(run), "--max-steps", "1")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "already holds a run" in proc.stderr and f"--resume {run}" in proc.stderr and "--overwrite" in proc.stderr


def test_resume_refuses_checkpoints_of_another_run(tmp_path):
    cfg = tiny_config(tmp_path, "grpo", **{"train.max_steps": 1})
    run_steps(cfg)
    info = json.loads((Path(cfg.out_dir) / "run.json").read_text())
    (Path(cfg.out_dir) / "run.json").write_text(json.dumps({**info, "run_id": "someone-else"}))
    with pytest.raises(RunDirectoryError, match="mixes two runs"):
        Trainer(cfg, resume=True)


# ---------------------------------------------------------------- items 2, 4, 9: resume anywhere, data split


def test_resume_by_three_spellings_and_from_another_directory(tmp_path):
    rows = [{"prompt": f"{i}+{i % 7}=", "answer": str(i + i % 7)} for i in range(40)]
    (tmp_path / "mine.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    first = priorl(
        "train", "--data", "mine.jsonl", "--out", "runs/x", "--max-steps", "1", *SMALL, "--set", "eval.max_problems=4",
        cwd=tmp_path,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert "held-out set: split from" in first.stdout and "4 problems" in first.stdout and "--test FILE" in first.stdout
    summary = json.loads((tmp_path / "runs/x/summary.json").read_text())
    assert summary["data"]["train_problems"] == 36 and summary["data"]["held_out_problems"] == 4
    # the data path is stored resolved, so the run resumes from anywhere
    assert yaml.safe_load((tmp_path / "runs/x/config.yaml").read_text())["data"]["train"] == str(
        tmp_path / "mine.jsonl"
    )
    for steps, spelling, cwd in (
        (2, "runs/x/", tmp_path),
        (3, "./runs/x", tmp_path),
        (4, str(tmp_path / "runs" / "x"), tmp_path.parent),
    ):
        proc = priorl("train", "--resume", spelling, "--max-steps", str(steps), "--allow-change", cwd=cwd)
        assert proc.returncode == 0, proc.stderr
        assert f"at step {steps - 1}" in proc.stdout
    run = tmp_path / "runs" / "x"
    assert [m["step"] for m in read_jsonl(run / "metrics.jsonl")] == [1, 2, 3, 4]
    assert len(json.loads((run / "run.json").read_text())["resumed"]) == 3
    # visits per problem count every step's groups across the resumes (rebuilt from batches.jsonl)
    visits = json.loads((run / "summary.json").read_text())["visits"]
    drawn = [i for b in read_jsonl(run / "batches.jsonl") for i in b["problem_ids"]]
    assert visits["draws"] == len(drawn) and visits["problems"] == 36 and visits["visited"] == len(set(drawn))

    done = priorl("train", "--resume", "runs/x", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "already at its last step (4" in done.stdout and "--max-steps N --allow-change" in done.stdout
    assert [m["step"] for m in read_jsonl(run / "metrics.jsonl")] == [1, 2, 3, 4]
    assert len(read_jsonl(run / "eval.jsonl")) == len(set(e["step"] for e in read_jsonl(run / "eval.jsonl")))


def test_held_out_split_is_seeded_disjoint_and_capped():
    problems = [Problem(id=i, prompt=f"p{i}", answer=str(i)) for i in range(1000)]
    train, test = held_out_split(problems, 0.1, 500)
    assert len(test) == 100 and len(train) == 900
    assert {p.prompt for p in train}.isdisjoint(p.prompt for p in test)
    assert [p.id for p in train] == list(range(900)) and [p.id for p in test] == list(range(100))
    assert held_out_split(problems, 0.1, 500)[1] == test  # the same split every time
    assert len(held_out_split(problems, 0.9, 50)[1]) == 50
    with pytest.raises(ValueError, match="--test"):
        held_out_split(problems[:1], 0.1, 5)


def test_test_file_and_batch_larger_than_the_data(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"{i}+1=", "answer": str(i + 1)}) + "\n" for i in range(20)))
    cfg = tiny_config(tmp_path, "grpo", **{"data.train": str(data), "data.test": str(data)})
    trainer = Trainer(cfg)
    assert len(trainer.problems) == 20 and len(trainer.test_problems) == 20 and str(data) in trainer.held_out
    trainer.close()
    big = tiny_config(tmp_path / "b", "grpo", **{"data.train": str(data), "train.batch_size": 19})
    with pytest.raises(
        ValueError, match=r"larger than the 18 training problems .* after the held-out split.*--batch-size"
    ):
        Trainer(big)


# ---------------------------------------------------------------- item 3: stopping (in-process part)


def test_interrupted_before_the_first_step_resumes_from_the_start(tmp_path, monkeypatch):
    full = run_steps(tiny_config(tmp_path / "a", "grpo", **{"train.max_steps": 2}))
    cfg = tiny_config(tmp_path / "b", "grpo", **{"train.max_steps": 2})
    monkeypatch.setitem(faults._FAULTS, ("generate", 1), signal.SIGINT)
    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN under nohup / a background job
    trainer = Trainer(cfg)
    with pytest.raises(TrainingInterrupted) as info:
        trainer.train()
    trainer.close()
    assert info.value.checkpoint is None and info.value.step == 0 and info.value.exit_code == 130
    assert signal.getsignal(signal.SIGINT) is before  # handlers put back
    assert not ckpt.list_checkpoints(cfg.out_dir) and not read_jsonl(Path(cfg.out_dir) / "metrics.jsonl")
    resumed = run_steps(cfg, resume=True)
    assert resumed.run_id == trainer.run_id
    assert read_jsonl(Path(full.run_dir) / "batches.jsonl") == read_jsonl(Path(cfg.out_dir) / "batches.jsonl")


def test_evaluation_never_changes_training(tmp_path):
    plain = run_steps(tiny_config(tmp_path / "a", **{"train.max_steps": 2}))
    evals = {"eval.every": 1, "eval.samples": 2, "eval.max_problems": 4, "eval.before": True}
    evaluated = run_steps(tiny_config(tmp_path / "b", **{"train.max_steps": 2, **evals}))
    assert [e["step"] for e in read_jsonl(Path(evaluated.run_dir) / "eval.jsonl")] == [0, 1, 2]
    assert read_jsonl(Path(plain.run_dir) / "batches.jsonl") == read_jsonl(Path(evaluated.run_dir) / "batches.jsonl")


# ---------------------------------------------------------------- items 5-8: seeing what happens


def test_a_log_gets_progress_lines_evaluations_summary_and_plot(tmp_path):
    run = tmp_path / "run"
    proc = priorl(
        "train", "--out", str(run), "--max-steps", "3", *SMALL, "--set", "logging.tensorboard=true",
        "--set", "eval.max_problems=8", "--set", "eval.samples=2", "--set", "logging.progress_every_s=0",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    progress = [line for line in lines if line.startswith("step ")]
    assert [line.split()[1] for line in progress] == ["1/3", "2/3", "3/3"]
    for part in ("completions", "reward", "informative", "replayed", "s/step", "ETA"):
        assert all(part in line for line in progress), part
    # by default: before, a few during (here every step, 3 steps), after
    held = [line for line in lines if line.startswith("held-out at step")]
    assert [line.split()[3].rstrip(":") for line in held] == ["0", "1", "2", "3"]
    assert "summary:" in proc.stdout and "tensorboard --logdir" in proc.stdout

    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["steps"]["done"] == 3
    assert summary["budget"]["completions_generated"] == 3 * 4 * 4
    assert summary["held_out"]["table"][-1]["level"] == "all"
    assert summary["held_out"]["before"]["step"] == 0 and summary["held_out"]["after"]["step"] == 3
    assert summary["verifier"]["training"] == {"completions": 48, "errors": 0, "timeouts": 0, "failure_rate": 0.0}
    assert summary["wall_seconds"] > 0 and summary["paths"]["plot"] == str(run / "progress.png")
    assert (run / "progress.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    samples = read_jsonl(run / "samples.jsonl")
    assert len(samples) == 4 * 4 and {"prompt", "answer", "completion", "reward"} <= set(samples[0])

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tb"), size_guidance={"tensors": 0, "scalars": 0}).Reload()
    assert [e.step for e in events.Scalars("eval/accuracy")] == [0, 1, 2, 3]
    assert "eval/avg@2" in events.Tags()["scalars"] and "eval_by_completions/accuracy" in events.Tags()["scalars"]
    assert any("eval/samples" in tag for tag in events.Tags()["tensors"])


class Recorder(Reporter):
    def __init__(self):
        self.warnings = []

    def warn(self, message):
        self.warnings.append(message)


def test_a_failing_verifier_is_warned_about_and_summarized(tmp_path):
    cfg = tiny_config(
        tmp_path, "grpo", **{"verifier.name": f"{HERE / 'flaky_verifier.py'}:score", "verifier.isolation": "none"}
    )
    trainer = Trainer(cfg)
    seen = Recorder()
    trainer.train(progress=seen)
    trainer.close()
    assert len(seen.warnings) == 1  # once, not every step
    assert "failed on 8 of 16 completions (50%) at step 1" in seen.warnings[0]
    summary = json.loads((Path(cfg.out_dir) / "summary.json").read_text())
    assert summary["verifier"]["training"]["errors"] == 24 and summary["verifier"]["training"]["failure_rate"] == 0.5
    assert summary["warnings"] == seen.warnings


# ---------------------------------------------------------------- items 10-12: saying what the user meant


def test_did_you_mean_for_unknown_keys():
    cases = {
        "train.batch_sze=3": "did you mean 'train.batch_size'?",
        "batch_size=3": "it belongs in a section: 'train.batch_size'",
        "trian.lr=1": "did you mean 'train'?",
        "group_sise=2": "did you mean 'generation.group_size'?",
    }
    for override, hint in cases.items():
        with pytest.raises(ConfigError) as info:
            load_config(None, [override])
        assert hint in str(info.value)


def test_flags_print_config_help_and_version(tmp_path):
    proc = priorl(
        "train", "--print-config", "--batch-size", "7", "--group-size", "3", "--lr", "0.001",
        "--model", "some/model", "--test", "null", "--out", str(tmp_path / "r"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    cfg = yaml.safe_load(proc.stdout)
    assert (cfg["train"]["batch_size"], cfg["generation"]["group_size"], cfg["train"]["lr"]) == (7, 3, 0.001)
    assert cfg["model"]["path"] == "some/model" and cfg["data"]["test"] is None
    assert not (tmp_path / "r").exists()  # printed, nothing run
    helptext = " ".join(priorl("train", "--help").stdout.replace("│", " ").split())  # unwrapped, unboxed
    for shown in ("train.batch_size; default 16", "generation.group_size; default 8", "train.lr; default 1e-05"):
        assert shown in helptext
    assert "demo.yaml values" not in helptext
    from priorl import __version__

    assert priorl("--version").stdout.strip() == f"priorl {__version__}"


def test_compare_refuses_a_used_output_directory(tmp_path):
    from priorl.study import make_plan, run_study

    (tmp_path / "cmp").mkdir()
    (tmp_path / "cmp" / "summary.json").write_text("{}")
    plan = make_plan(load_config(None).model_dump(mode="json"), presets=["grpo"], seeds=[0], budget=16,
                     out=tmp_path / "cmp")  # fmt: skip
    with pytest.raises(ValueError, match="already holds a study.*--overwrite"):
        run_study(plan)


def test_terminal_bar_shows_time_left_and_evaluation_progress(tmp_path):
    import io

    from rich.console import Console

    from priorl.grpo.progress import RichReporter

    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=160, color_system=None)
    cfg = tiny_config(tmp_path, "grpo", **{"train.max_steps": 2, "eval.every": 1, "eval.max_problems": 4})
    trainer = Trainer(cfg)
    trainer.train(progress=RichReporter(console))
    trainer.close()
    text = screen.getvalue()
    assert "train" in text and "eta" in text and "2/2" in text
    assert "eval @ 1" in text and "held-out at step 1: pass@1" in text


# ---------------------------------------------------------------- issue 32, item 6: short runs and plain errors


@pytest.mark.parametrize(
    ("steps", "during", "due"),
    [(5, 3, [1, 2, 3]), (3, 3, [1, 2]), (10, 3, [2, 5, 7]), (100, 3, [25, 50, 75]), (1, 3, []), (8, 0, [])],
)
def test_eval_during_spreads_at_most_that_many_evaluations(steps, during, due):
    from priorl.grpo.schedule import Schedule

    cfg = load_config(None, [f"train.max_steps={steps}", f"eval.during={during}"])
    schedule = Schedule(cfg)
    per_step = 64
    got = [s for s in range(1, steps) if schedule.eval_due(s, (s - 1) * per_step, s * per_step)]
    assert got == due
    # The same with a budget of completions: as many points, spread over it (at the first step that reaches each).
    budget = load_config(None, [f"train.max_steps={10 * steps}", f"train.max_rollouts={steps * per_step}",
                                f"eval.during={during}"])  # fmt: skip
    schedule = Schedule(budget)
    assert len([s for s in range(1, steps) if schedule.eval_due(s, (s - 1) * per_step, s * per_step)]) == len(due)


def test_a_config_error_names_its_source_not_overrides_the_user_never_gave(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  batch_sze: 4\n")
    proc = priorl("train", "-c", str(bad), "--max-steps", "5", "--out", str(tmp_path / "r"), "--print-config")
    assert proc.returncode == 2
    assert f"{bad}: unknown key 'train.batch_sze'; did you mean 'train.batch_size'?" in proc.stderr
    assert "--set" not in proc.stderr and "Traceback" not in proc.stderr
    # An override the user gave is named as they gave it, a flag by the flag.
    good = tmp_path / "good.yaml"
    good.write_text("train:\n  batch_size: 4\n")
    proc = priorl("train", "-c", str(good), "--max-steps", "5", "--set", "generation.group_sise=2", "--print-config")
    assert proc.returncode == 2
    assert "--set generation.group_sise=2: unknown key 'generation.group_sise'" in proc.stderr
    proc = priorl("train", "-c", str(good), "--verifier", "numeric", "--set", "eval.samples=-1", "--print-config")
    assert proc.returncode == 2 and "--set eval.samples=-1: eval.samples:" in proc.stderr
    with pytest.raises(ConfigError, match=r"^--max-steps -1: train.max_steps: "):
        load_config(None, ["train.max_steps=-1"], origins={"train.max_steps": "--max-steps -1"})


def test_a_missing_prompt_field_suggests_data_prompt_key(tmp_path):
    data = tmp_path / "q.jsonl"
    data.write_text("".join(json.dumps({"question": f"{a}+1=", "answer": str(a + 1)}) + "\n" for a in range(20)))
    proc = priorl("train", "--data", str(data), "--max-steps", "1", "--out", str(tmp_path / "r"))
    assert proc.returncode == 2, proc.stderr
    assert "missing field 'prompt'" in proc.stderr
    assert "--set data.prompt_key=question" in proc.stderr and "Traceback" not in proc.stderr


# ---------------------------------------------------------------- issue 32, item 5: a part that would do nothing


def test_train_warns_at_start_when_replay_cannot_act_within_the_run(tmp_path):
    # adv-replay's warm-up (20 steps) is longer than a 2-step run: every step would say "replayed 0", silently.
    proc = priorl(
        "train", "--preset", "adv-replay", "--max-steps", "2", "--batch-size", "4", "--group-size", "4",
        "--set", "generation.max_new_tokens=4", "--set", "eval.before=false", "--set", "eval.after=false",
        "--set", "logging.tensorboard=false", "--out", str(tmp_path / "r"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "warning: replay.warmup_steps is 20 for this run's 2 steps: nothing is ever replayed" in proc.stderr
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert any("replay.warmup_steps is 20" in w for w in summary["warnings"])  # what compare's runs keep


def test_the_trainer_warns_about_each_idle_part_once(tmp_path):
    from priorl.grpo.parts import idle_parts

    def idle(preset="adv-replay", steps=5, problems=1000, **extra):
        return idle_parts(preset_config(None, [f"{k}={v}" for k, v in extra.items()], preset=preset), steps, problems)

    assert idle(steps=5) and "nothing is ever replayed" in idle(steps=5)[0]
    assert "only at the last step (20)" in idle(steps=20)[0] and idle(steps=21) == []
    assert "nothing is ever replayed" in idle(**{"replay.tau_max": 0}, steps=100)[0]
    assert "replay_ratio is 0" in idle(**{"replay.replay_ratio": 0}, steps=100)[0]
    # A heap sampler takes never-sampled problems first: 5 x 16 <= 1000 problems are all first visits.
    assert any("every batch is first visits" in w for w in idle("prioritized", steps=5, problems=1000))
    retest = idle("prioritized", steps=5, problems=40, **{"sampler.retest_every": 10})
    assert retest == ["sampler.retest_every is 10, more than the 5 sampler calls of this run's 5 steps: "
                      "no whole-batch retest happens"]  # fmt: skip
    assert idle("experimental-beta", steps=50, problems=40) == [] and idle("grpo", steps=1) == []
    assert "never reaches train.lr" in idle("grpo", steps=5, **{"train.lr_warmup_steps": 10})[0]

    cfg = tiny_config(tmp_path, "prioritized", **{"train.max_steps": 2, "sampler.retest_every": 5})
    trainer = Trainer(cfg)
    seen = Recorder()
    trainer.train(progress=seen)
    trainer.close()
    assert len(seen.warnings) == 1 and "first visits" in seen.warnings[0]  # 2 x 4 of the arithmetic set's problems
