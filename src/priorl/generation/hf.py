"""Hugging Face ``generate`` backend: batched sampling from the policy model itself."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from priorl.generation.base import GenerationOutput


class HFGenerator:
    """Sample with ``model.generate`` on the training model (no weight copy, so no sync needed).

    Sequences are generated in chunks of ``batch_size`` with left padding. Behavior log-probs are
    ``log_softmax(logits / temperature)`` of the raw model logits at each sampled token: the same
    quantity the trainer computes in its forward pass, so on-policy ratios start at 1. ``top_p`` < 1
    truncates what is *sampled*, not the log-prob (the usual GRPO convention).
    """

    def __init__(
        self,
        model,
        tokenizer,
        *,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 16,
        batch_size: int = 256,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.max_new_tokens = int(max_new_tokens)
        self.batch_size = int(batch_size)
        if tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no EOS token: generation could never stop on its own")
        self.eos_id = int(tokenizer.eos_token_id)
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_id)

    def sync_weights(self) -> None:
        """Nothing to do: generation runs on the training model."""

    def encode_prompts(self, prompts: Sequence[str]) -> list[list[int]]:
        """Token ids of each prompt, as the tokenizer's defaults produce them."""
        return [list(ids) for ids in self.tokenizer(list(prompts))["input_ids"]]

    @torch.no_grad()
    def generate(
        self,
        prompts: Sequence[str],
        n: int,
        *,
        greedy: bool = False,
        max_new_tokens: int | None = None,
    ) -> GenerationOutput:
        """``n`` completions per prompt (grouped by prompt); ``greedy`` decodes one deterministic completion."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        max_new = int(max_new_tokens or self.max_new_tokens)
        encoded = self.encode_prompts(prompts)
        seqs = [ids for ids in encoded for _ in range(n)]
        was_training = self.model.training
        self.model.eval()
        out = GenerationOutput([], [], [], [], [])
        try:
            for start in range(0, len(seqs), self.batch_size):
                self._generate_chunk(seqs[start : start + self.batch_size], greedy, max_new, out)
        finally:
            if was_training:
                self.model.train()
        return out

    def _generate_chunk(self, prompts: list[list[int]], greedy: bool, max_new: int, out: GenerationOutput) -> None:
        device = next(self.model.parameters()).device
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, p in enumerate(prompts):  # left padding: every prompt ends where generation starts
            input_ids[i, width - len(p) :] = torch.tensor(p, dtype=torch.long)
            attention[i, width - len(p) :] = 1
        kwargs = dict(
            input_ids=input_ids.to(device),
            attention_mask=attention.to(device),
            max_new_tokens=max_new,
            eos_token_id=self.eos_id,
            pad_token_id=self.pad_id,
            output_logits=True,
            return_dict_in_generate=True,
        )
        if greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=self.temperature, top_p=self.top_p, top_k=0)
        result = self.model.generate(**kwargs)
        new_tokens = result.sequences[:, width:]  # [b, T]
        temperature = 1.0 if greedy else self.temperature
        # Raw logits of each generated position [b, V] -> log-prob of its sampled token [b]; one position
        # at a time, so a large vocabulary never needs a [b, T, V] float copy.
        token_logprobs = torch.stack(
            [
                torch.log_softmax(step_logits.float() / temperature, dim=-1)
                .gather(-1, new_tokens[:, t : t + 1])
                .squeeze(-1)
                for t, step_logits in enumerate(result.logits)
            ],
            dim=1,
        )
        tokens, lps = new_tokens.tolist(), token_logprobs.tolist()
        for prompt, row, lp in zip(prompts, tokens, lps, strict=True):
            end = row.index(self.eos_id) + 1 if self.eos_id in row else len(row)
            completion = row[:end]
            out.prompt_ids.append(prompt)
            out.completion_ids.append(completion)
            out.logprobs.append(lp[:end])
            out.finished.append(self.eos_id in row)
            out.texts.append(self.tokenizer.decode(completion, skip_special_tokens=True))
