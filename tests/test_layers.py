"""The floors of the package: eval/ (accuracy, AES, plots) sits below grpo/ (the trainer), which sits below
study/ (the comparison harness), which sits below cli.py. A module imports only from its own floor or below."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "priorl"


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return names


def test_eval_imports_nothing_from_the_trainer_or_the_harness():
    for path in (SRC / "eval").glob("*.py"):
        bad = {m for m in imports(path) if m.startswith(("priorl.grpo", "priorl.study", "priorl.cli"))}
        assert not bad, f"{path.name} imports {bad}"


def test_the_trainer_imports_nothing_from_the_harness():
    for path in (SRC / "grpo").glob("*.py"):
        bad = {m for m in imports(path) if m.startswith(("priorl.study", "priorl.cli"))}
        assert not bad, f"{path.name} imports {bad}"


def test_import_priorl_study_is_light():
    import subprocess
    import sys

    code = "import sys, priorl.study; print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
