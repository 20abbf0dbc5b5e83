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


MAX_LINES = 100  # a function, from its def to its end
MAX_COMMAND_BODY = 60  # a CLI command's body: it parses (its signature declares the options) and calls the library


def _is_cli_command(node: ast.FunctionDef) -> bool:
    return any(
        isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr == "command"
        for d in node.decorator_list
    )


def _body_lines(node: ast.FunctionDef) -> int:
    """Lines of the body after the docstring."""
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        body = body[1:]
    return node.end_lineno - body[0].lineno + 1 if body else 0


def long_functions(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if _is_cli_command(node):
            if _body_lines(node) > MAX_COMMAND_BODY:
                found.append(f"{node.name} (line {node.lineno}): a CLI command with a {_body_lines(node)}-line body")
        elif node.end_lineno - node.lineno + 1 > MAX_LINES:
            found.append(f"{node.name} (line {node.lineno}): {node.end_lineno - node.lineno + 1} lines")
    return found


def test_functions_stay_short_and_cli_commands_only_parse():
    bad = [f"{path.relative_to(SRC)} {hit}" for path, tree in _modules() for hit in long_functions(tree)]
    assert not bad, "split these (or move the logic out of cli.py):\n" + "\n".join(bad)


def test_the_length_check_can_fail():
    long_body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES + 1))
    assert long_functions(ast.parse(f"def f():\n{long_body}\n")) == [f"f (line 1): {MAX_LINES + 2} lines"]
    command = f'@app.command("c")\ndef c(a: int = 1):\n    """Help."""\n{long_body}\n'
    assert long_functions(ast.parse(command)) == [f"c (line 2): a CLI command with a {MAX_LINES + 1}-line body"]
    short = "\n".join(f"    x{i} = {i}" for i in range(MAX_COMMAND_BODY))
    assert long_functions(ast.parse(f'@app.command("c")\ndef c():\n    """Help."""\n{short}\n')) == []


def import_graph() -> dict[str, set[str]]:
    """Module -> the priorl modules it imports, counting imports inside functions (``from pkg import sub`` is an
    edge to the submodule, not to the package)."""
    root = SRC.parent
    modules = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(root).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("priorl"):
                subs = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules]
                targets = subs if len(subs) == len(node.names) else [node.module, *subs]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("priorl")]
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_has_no_circle():
    graph = import_graph()
    assert "priorl.presets" not in graph["priorl.config"]  # presets depend on config, not the reverse
    assert "priorl.config" in graph["priorl.presets"]
    assert cycles(graph) == [], "modules that import each other (directly or around a circle)"


def test_the_circle_check_can_fail():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
