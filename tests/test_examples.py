"""Every script in examples/ runs, at tiny scale, as a user would run it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(EXAMPLES.parent / "src") + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, str(EXAMPLES / script), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)


def test_own_loop_example():
    proc = run("own_loop.py", "--steps", "3", "--batch-size", "4", "--group-size", "4", "--eval-problems", "10")
    assert proc.returncode == 0, proc.stderr
    steps = [line for line in proc.stdout.splitlines() if line.startswith("step ")]
    assert len(steps) == 3
    replayed = [int(line.split("replayed ")[1].split()[0]) for line in steps]
    assert replayed[0] == 0 and 0 < replayed[-1] <= 8  # after the warm-up, up to half the 16 fresh are replayed
    assert "held-out pass@1 on 10 problems" in proc.stdout


def test_trl_example(tmp_path):
    pytest.importorskip("trl")
    proc = run("trl_tiny.py", "--max-steps", "2", "--problems", "32", "--output-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "done: 2 steps; sampler calls" in proc.stdout


@pytest.mark.parametrize("extra", [[], ["--no-sampler"]], ids=["sampler+replay", "replay"])
def test_trl_replay_example(tmp_path, extra):
    pytest.importorskip("trl")
    args = ["--max-steps", "4", "--problems", "32", "--replay", *extra, "--output-dir", str(tmp_path)]
    proc = run("trl_tiny.py", *args)
    assert proc.returncode == 0, proc.stderr
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("replay: ")]
    replayed, stored = int(line.split()[1]), int(line.split(", ")[2].split()[0])
    assert replayed == 8 and stored > 0  # round(0.5 x 16) rows replayed after the 2-generation warm-up
    assert ("done: 4 steps; sampler" in proc.stdout) == (not extra)
