"""The generator protocol and what one generation call returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class GenerationOutput:
    """Completions for ``len(prompts) * n`` sequences, grouped: prompt 0's n completions first.

    Token lists are ragged Python lists (no padding). A completion ends with an EOS token, or with the token
    that completes a stop string, when it stopped on its own (``finished``), or is cut at ``max_new_tokens``.
    ``logprobs`` are those of the distribution each token was sampled from, one sequence per completion (the HF
    backend gives float32 numpy arrays; lists of floats are fine too); ``texts`` end before a stop string.
    """

    prompt_ids: list[list[int]]  # [N][P_i] prompt token ids
    completion_ids: list[list[int]]  # [N][C_i] sampled token ids, EOS included when produced
    logprobs: list  # [N][C_i] (arrays or lists) log pi_behavior(token) under softmax(logits / temperature)
    texts: list[str]  # [N] decoded completions, special tokens removed
    finished: list[bool] = field(default_factory=list)  # [N] stopped at EOS or a stop string

    def __len__(self) -> int:
        return len(self.completion_ids)

    @property
    def num_tokens(self) -> int:
        """Completion tokens generated (the cost axis)."""
        return sum(len(c) for c in self.completion_ids)


class Generator(Protocol):
    """What the trainer needs from a generation backend."""

    def generate(
        self,
        prompts: Sequence[str],
        n: int,
        *,
        greedy: bool = False,
        max_new_tokens: int | None = None,
        batch_size: int | None = None,
    ) -> GenerationOutput:
        """Sample ``n`` completions for each prompt (or one greedy completion each when ``greedy``);
        ``batch_size`` bounds the sequences generated at once."""
        ...

    def sync_weights(self) -> None:
        """Make generation use the policy's current weights (a no-op when the backend shares the model)."""
        ...
