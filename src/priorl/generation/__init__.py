"""Generation backends: sample G completions per prompt and record their behavior log-probs.

The trainer talks to the :class:`Generator` protocol only, so a vLLM backend can plug in later
without touching it.
"""

from priorl.generation.base import GenerationOutput, Generator
from priorl.generation.hf import HFGenerator

__all__ = ["GenerationOutput", "Generator", "HFGenerator"]
