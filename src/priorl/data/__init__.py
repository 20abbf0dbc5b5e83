"""Problem sets: load and validate files (JSONL, Parquet, CSV, Hugging Face), and the builtin task family.

``load_problems("train.jsonl")``, ``load_problems("builtin:arithmetic")`` and
``load_problems("builtin:arithmetic-test")`` all return ``list[Problem]`` with ``Problem.id`` equal to the
index in the list. Importing this package stays light: pyarrow and datasets are imported only when a
Parquet file or a Hugging Face dataset is loaded.
"""

from priorl.data.arithmetic import LEVELS, arithmetic_problems, stream_arithmetic
from priorl.data.loading import (
    BUILTIN_SPECS,
    DatasetError,
    DuplicateProblemsWarning,
    LoadResult,
    load_problems,
    read_problems,
)
from priorl.data.prompts import PromptFormatter

__all__ = [
    "BUILTIN_SPECS",
    "LEVELS",
    "DatasetError",
    "DuplicateProblemsWarning",
    "LoadResult",
    "PromptFormatter",
    "arithmetic_problems",
    "load_problems",
    "read_problems",
    "stream_arithmetic",
]
