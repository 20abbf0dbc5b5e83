"""Turning a verifier spec (``"math"``, ``"mymod:score"``, ``"path/to/file.py:score"``) into a function.

The resolution is split in two so a worker process can repeat it: :func:`parse_spec` turns the
string into a plain-data :class:`FunctionRef` (built-ins are just references into this package), and
:func:`load_function` imports what it names. Every failure is a ``ValueError`` naming the spec, so
the CLI can print it as one line.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import keyword
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["BUILTIN_VERIFIERS", "Builtin", "FunctionRef", "check_call_signature", "load_function", "parse_spec"]

Isolation = Literal["process", "none"]


@dataclass(frozen=True)
class Builtin:
    """Where a built-in verifier's function lives, and where it runs unless told otherwise."""

    module: str
    attr: str
    isolation: Isolation
    summary: str


BUILTIN_VERIFIERS: Mapping[str, Builtin] = {
    "exact": Builtin("priorl.rewards.builtin", "exact_score", "none", "stripped string equality"),
    "numeric": Builtin(
        "priorl.rewards.builtin", "numeric_score", "none", "last number of the completion, compared numerically"
    ),
    "math": Builtin("priorl.rewards.math_verifier", "math_score", "process", "symbolic equivalence (math-verify)"),
}


@dataclass(frozen=True)
class FunctionRef:
    """A reference to a scoring function: a module (or a ``.py`` file) and an attribute; plain fields, sent as JSON."""

    spec: str  # as written by the user, for messages
    module: str  # dotted module name, or an absolute path to a .py file
    attr: str  # dotted attribute path inside the module
    isolation: Isolation  # where it runs by default

    @property
    def from_file(self) -> bool:
        return self.module.endswith(".py")


def _is_dotted_name(text: str) -> bool:
    return bool(text) and all(part.isidentifier() and not keyword.iskeyword(part) for part in text.split("."))


def _bad(spec: str, why: str) -> ValueError:
    # One line: the CLI prints it as is, and an imported module's error may span several.
    return ValueError(f"bad verifier spec {spec!r}: {' '.join(why.split())}")


def parse_spec(spec: str) -> FunctionRef:
    """Check a spec's syntax and resolve built-in names; imports nothing.

    Forms: a built-in name (``exact``, ``numeric``, ``math``), ``module.path:function`` or
    ``path/to/file.py:function`` (the part before the last colon ending in ``.py`` means a file; a
    relative path is taken from the current directory). ``function`` may be dotted
    (``mod:Class.method``).

    Raises:
        ValueError: naming the spec, for an empty spec, an unknown name or a malformed reference.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"bad verifier spec {spec!r}: expected a non-empty string")
    spec = spec.strip()
    if spec in BUILTIN_VERIFIERS:
        b = BUILTIN_VERIFIERS[spec]
        return FunctionRef(spec, b.module, b.attr, b.isolation)
    if ":" not in spec:
        names = ", ".join(BUILTIN_VERIFIERS)
        raise _bad(spec, f"unknown verifier; expected one of {names}, 'module:function' or 'file.py:function'")
    module, attr = (part.strip() for part in spec.rsplit(":", 1))
    if not _is_dotted_name(attr):
        raise _bad(spec, f"{attr!r} is not a function name")
    if module.endswith(".py"):
        return FunctionRef(spec, os.path.abspath(module), attr, "process")
    if not _is_dotted_name(module):
        raise _bad(spec, f"{module!r} is neither an importable module name nor a path ending in .py")
    return FunctionRef(spec, module, attr, "process")


def _import_file(ref: FunctionRef) -> Any:
    path = ref.module
    if not os.path.isfile(path):
        raise _bad(ref.spec, f"file {path} does not exist")
    # One module per file, named after its path, so loading it twice (parent, then worker; or two
    # verifiers) executes it once per process, and everything defined in it is found by that name.
    name = "_priorl_verifier_" + hashlib.sha1(path.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise _bad(ref.spec, f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as e:
        del sys.modules[name]
        raise _bad(ref.spec, f"importing {path} raised {type(e).__name__}: {e}") from e
    return module


def _import_module(ref: FunctionRef) -> Any:
    try:
        return importlib.import_module(ref.module)
    except ModuleNotFoundError as e:
        if e.name is not None and (ref.module == e.name or ref.module.startswith(e.name + ".")):
            raise _bad(
                ref.spec,
                f"module {ref.module!r} is not importable ({e}); a user verifier must be importable in "
                "the training process and its worker processes: install it, put its directory on "
                "PYTHONPATH, or use the 'path/to/file.py:function' form",
            ) from e
        raise _bad(ref.spec, f"importing module {ref.module!r} raised ModuleNotFoundError: {e}") from e
    except (Exception, SystemExit) as e:
        raise _bad(ref.spec, f"importing module {ref.module!r} raised {type(e).__name__}: {e}") from e


def load_function(ref: FunctionRef) -> Callable[..., Any]:
    """Import the module (or execute the file) a reference names and return its callable.

    Raises:
        ValueError: naming the spec, if the module cannot be imported, the attribute is missing or
            the object is not callable.
    """
    obj = _import_file(ref) if ref.from_file else _import_module(ref)
    where = ref.module
    for part in ref.attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise _bad(ref.spec, f"{where} has no attribute {part!r}") from None
        where = f"{where}.{part}" if not ref.from_file else f"{where}:{part}"
    if not callable(obj):
        raise _bad(ref.spec, f"{ref.attr!r} is not callable (it is a {type(obj).__name__})")
    return obj


def check_call_signature(fn: Callable[..., Any], kwargs: Mapping[str, Any], spec: str) -> None:
    """Check that ``fn(completion, answer, **kwargs)`` binds, where the signature is introspectable.

    Raises:
        ValueError: naming the spec, if it does not (wrong arity, an unknown keyword argument).
    """
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins and some C callables have no signature: trust them
        return
    try:
        signature.bind("completion", "answer", **kwargs)
    except TypeError as e:
        extra = "".join(f", {k}=..." for k in kwargs)
        raise _bad(spec, f"cannot be called as f(completion, answer{extra}): {e}") from None
