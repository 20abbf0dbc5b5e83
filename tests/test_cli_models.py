"""`priorl eval` / `priorl train` with model paths and the eval options of issue 13, through a subprocess."""

import json
import subprocess
import sys


def priorl(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "priorl.cli", *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def test_a_mistyped_local_model_fails_at_once(tmp_path):
    (tmp_path / "runs").mkdir()
    for cmd in (["eval", "--model", "runs/nothig"], ["train", "--set", "model.path=runs/nothig"]):
        out = priorl(*cmd, cwd=tmp_path)
        assert out.returncode == 2, out.stderr
        assert "'runs/nothig': no such file or directory" in out.stderr
        assert "Traceback" not in out.stderr and "huggingface.co" not in out.stderr


def test_eval_batch_size_and_stop(tmp_path):
    out = priorl("eval", "--model", "builtin:tiny-arith", "--max-problems", "5", "--sequences-per-call", "2",
                 "--max-new-tokens", "6", "--stop", "7", "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["num_problems"] == 5 and 0 <= result["accuracy"] <= 1


def test_top_p_below_one_is_a_config_error():
    out = priorl("train", "--set", "generation.top_p=0.9")
    assert out.returncode == 2 and "generation.top_p" in out.stderr and "Traceback" not in out.stderr
