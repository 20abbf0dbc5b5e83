"""The `priorl` command, run as a user would: through a subprocess."""

import json
import subprocess
import sys

import pytest


def priorl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "priorl.cli", *args], capture_output=True, text=True, timeout=300)


def test_help_lists_the_commands():
    out = priorl("--help")
    assert out.returncode == 0
    assert "bench" in out.stdout
    bench = priorl("bench", "--help")
    for cmd in ("sampler", "replay", "simulate"):
        assert cmd in bench.stdout


def test_bench_sampler_json():
    out = priorl("bench", "sampler", "--json", "--sizes", "200,1e3", "--batch-size", "64", "--repeats", "2")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["results"]
    assert {(r["impl"], r["num_problems"]) for r in rows} == {
        (i, m)
        for i in ("prioritized-pass", "prioritized", "experimental-prioritized", "beta", "thompson", "sort", "numpy")
        for m in (200, 1000)
    }
    assert all(r["batch_size"] == 64 and r["step_ms"] > 0 for r in rows)


def test_bench_simulate_shows_prioritized_beating_uniform():
    out = priorl("bench", "simulate", "--json", "--steps", "120", "--seeds", "2")
    assert out.returncode == 0, out.stderr
    rows = {r["sampler"]: r for r in json.loads(out.stdout)["results"]}
    assert rows["prioritized"]["informative_fraction"] > rows["uniform"]["informative_fraction"]
    assert rows["prioritized"]["final_train_solve"] > rows["uniform"]["final_train_solve"]


def test_bench_simulate_tags_reports_every_mix_and_bounds_the_pass_samplers_visits():
    out = priorl("bench", "simulate", "--learner", "tags", "--json", "--steps", "40", "--seeds", "1")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["results"]
    mixes = {r["mix"] for r in rows}
    assert len(mixes) == 3 and {r["sampler"] for r in rows} >= {"grpo", "prioritized", "prioritized-pass"}
    for mix in mixes:
        by = {r["sampler"]: r for r in rows if r["mix"] == mix}
        assert by["prioritized-pass"]["max_visits"] <= -(-40 * 128 // 1500) + 1  # once per pass: ceil(T C / M) + 1
        assert by["experimental-beta"]["informative_fraction"] > by["grpo"]["informative_fraction"]
        assert abs(sum(by["grpo"]["budget_share"]) - 1) < 1e-2 and len(by["grpo"]["curve"]) == 9


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bench", "simulate", "--learner", "levels"], "choose 'problems' or 'tags'"),
        (["bench", "sampler", "--sizes", "abc"], "not a number"),
        (["bench", "sampler", "--sizes", "100", "--batch-size", "512"], "larger than M"),
        (["bench", "simulate", "--num-problems", "10", "--batch-size", "20"], "larger than --num-problems"),
    ],
)
def test_bad_arguments_give_one_clear_line(args, message):
    out = priorl(*args)
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr
