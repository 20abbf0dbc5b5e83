"""The token-level clipped surrogate objective and the per-token log-probs it needs."""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
import torch.utils.checkpoint


@dataclass
class PolicyLossStats:
    """Sums over the tokens of one micro-batch (the caller divides by the token count).

    Python numbers, or 0-dim tensors on the loss's device from ``clipped_surrogate(..., sync=False)``.
    """

    tokens: int | torch.Tensor
    clipped: float | torch.Tensor  # tokens whose clipped term is the active one
    ratio_sum: float | torch.Tensor
    ratio_max: float | torch.Tensor
    kl_sum: float | torch.Tensor = 0.0


# Float32 elements of [rows, positions, vocab] log-softmax computed at once; bounds the temporary copies
# (256 MB) whatever the batch, the completion length and the vocabulary.
_CHUNK_ELEMENTS = 1 << 26


def _supports_logits_to_keep(model) -> bool:
    hf = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        return "logits_to_keep" in inspect.signature(hf.forward).parameters
    except (TypeError, ValueError):
        return False


def _token_logprobs(logits: torch.Tensor, targets: torch.Tensor, temperature: float) -> torch.Tensor:
    """log_softmax(logits / T) at ``targets``: [b, c, V] and [b, c] -> [b, c], in float32."""
    scaled = logits.float() / temperature
    return scaled.gather(-1, targets[..., None]).squeeze(-1) - torch.logsumexp(scaled, dim=-1)


def sequence_logprobs(
    model,
    prompt_ids: list[list[int]],
    completion_ids: list[list[int]],
    temperature: float,
    pad_id: int,
    *,
    chunk_elements: int = _CHUNK_ELEMENTS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs of each completion token under ``softmax(logits / temperature)``.

    Sequences are ``prompt + completion``, *left*-padded with ``position_ids = cumsum(mask) - 1``: the layout
    ``generate()`` uses, so positions match those the behavior log-probs were recorded at. Every completion
    then ends at the last column, and the model computes logits for the last ``C_max + 1`` positions only
    (``logits_to_keep``; models without it get their full logits sliced). The float32 log-softmax runs in
    chunks of positions of at most ``chunk_elements`` elements, each recomputed in the backward pass
    (activation checkpointing) instead of kept, so no full-vocabulary float copy of all positions exists.

    Returns ``(logprobs, mask)``, both [b, C_max] (C_max: the longest completion), completion tokens from
    column 0; ``mask`` is 1.0 on real completion tokens, and ``logprobs`` is 0 elsewhere.
    """
    device = next(model.parameters()).device
    n = len(prompt_ids)
    lengths = [len(p) + len(c) for p, c in zip(prompt_ids, completion_ids, strict=True)]
    c_lens = torch.tensor([len(c) for c in completion_ids], dtype=torch.long)
    c_max = int(c_lens.max()) if n else 0
    if n == 0 or c_max == 0:
        empty = torch.zeros((n, c_max), device=device)
        return empty, empty.clone()
    width = max(lengths)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    attention = torch.zeros((n, width), dtype=torch.long)
    for i, (p, c) in enumerate(zip(prompt_ids, completion_ids, strict=True)):
        ids[i, width - lengths[i] :] = torch.tensor(list(p) + list(c), dtype=torch.long)
        attention[i, width - lengths[i] :] = 1
    position_ids = (attention.cumsum(-1) - 1).clamp(min=0)
    ids, attention, position_ids = ids.to(device), attention.to(device), position_ids.to(device)
    keep = c_max + 1  # position t predicts token t + 1: the last c_max + 1 positions predict the last c_max tokens
    kwargs = dict(input_ids=ids, attention_mask=attention, position_ids=position_ids)
    if _supports_logits_to_keep(model):
        logits = model(**kwargs, logits_to_keep=keep).logits
    else:
        logits = model(**kwargs).logits[:, -keep:]
    logits = logits[:, :-1]  # [n, c_max, V]; column j predicts ids[:, width - c_max + j]
    targets = ids[:, width - c_max :]
    vocab = logits.shape[-1]
    step = max(1, chunk_elements // max(1, n * vocab))
    checkpoint = torch.is_grad_enabled() and logits.requires_grad and step < c_max
    parts = []
    for j in range(0, c_max, step):
        args = (logits[:, j : j + step], targets[:, j : j + step], temperature)
        if checkpoint:
            parts.append(torch.utils.checkpoint.checkpoint(_token_logprobs, *args, use_reentrant=False))
        else:
            parts.append(_token_logprobs(*args))
    right = torch.cat(parts, dim=1)  # [n, c_max], completions right-aligned
    # Left-align: output column j of row i is right-aligned column c_max - C_i + j.
    offsets = torch.arange(c_max, device=device)
    c_lens = c_lens.to(device)
    mask = offsets[None, :] < c_lens[:, None]
    src = (c_max - c_lens[:, None] + offsets[None, :]).clamp(max=c_max - 1)
    logprobs = torch.where(mask, right.gather(1, src), torch.zeros((), device=device))
    return logprobs, mask.float()


def clipped_surrogate(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    eps_low: float = 0.2,
    eps_high: float = 0.28,
    dual_clip: float | None = None,
    ref_logprobs: torch.Tensor | None = None,
    kl_beta: float = 0.0,
    sync: bool = True,
) -> tuple[torch.Tensor, PolicyLossStats]:
    """Sum over tokens of the clipped policy-gradient loss (plus ``kl_beta`` * KL to a reference).

    ``ratio = exp(logprobs - old_logprobs)``; per token ``max(-A ratio, -A clip(ratio, 1-eps_low,
    1+eps_high))`` (clip-higher); with ``dual_clip = c``, negative-advantage tokens are also bounded by
    ``-A c``. All tensors [b, C]; ``advantages`` [b] or [b, C]. Returns the *sum* (token-mean is the
    caller's division by the global token count, so micro-batches add up exactly).

    ``sync=False`` leaves the statistics as 0-dim tensors on the device (no host synchronisation here), for a
    caller that accumulates them and reads them once.
    """
    adv = advantages[:, None].expand_as(logprobs) if advantages.dim() == 1 else advantages
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = -adv * ratio
    clipped = -adv * torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high)
    loss = torch.maximum(unclipped, clipped)
    if dual_clip is not None:
        loss = torch.where(adv < 0, torch.minimum(loss, -adv * dual_clip), loss)
    kl_sum = torch.zeros((), device=logprobs.device)
    if ref_logprobs is not None and kl_beta > 0:
        # k3 estimator of KL(pi || ref): exp(ref - logp) - (ref - logp) - 1, >= 0 and unbiased.
        delta = ref_logprobs - logprobs
        kl = torch.exp(delta) - delta - 1.0
        loss = loss + kl_beta * kl
        kl_sum = (kl * mask).detach().sum()
    total = (loss * mask).sum()
    with torch.no_grad():
        active_clip = (clipped > unclipped) & (mask > 0)
        ratio_masked = ratio * mask
        # Masked ratios are >= 0, so with no token the max is 0 (as before), and an empty tensor gives 0 too.
        ratio_max = ratio_masked.max() if ratio_masked.numel() else torch.zeros((), device=logprobs.device)
        stats = PolicyLossStats(
            tokens=mask.sum(), clipped=active_clip.sum(), ratio_sum=ratio_masked.sum(), ratio_max=ratio_max,
            kl_sum=kl_sum,
        )  # fmt: skip
        if sync:
            tokens, clipped_n, ratio_sum, ratio_max, kl_value = torch.stack(
                [t.float() for t in (stats.tokens, stats.clipped, stats.ratio_sum, stats.ratio_max, stats.kl_sum)]
            ).tolist()
            stats = PolicyLossStats(int(tokens), clipped_n, ratio_sum, ratio_max, kl_value)
    return total, stats
