"""Make the helper verifiers in this folder importable as top-level modules (and so by the workers,
which start with this process's sys.path)."""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
