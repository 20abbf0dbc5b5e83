"""The token-level clipped surrogate objective and the per-token log-probs it needs."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class PolicyLossStats:
    """Sums over the tokens of one micro-batch (the caller divides by the token count)."""

    tokens: int
    clipped: float  # tokens whose clipped term is the active one
    ratio_sum: float
    ratio_max: float
    kl_sum: float = 0.0


def sequence_logprobs(
    model, prompt_ids: list[list[int]], completion_ids: list[list[int]], temperature: float, pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs of each completion token under ``softmax(logits / temperature)``.

    Sequences are ``prompt + completion``, right-padded. Returns ``(logprobs, mask)``, both
    [b, C_max] (C_max: the longest completion); ``mask`` is 1.0 on real completion tokens.
    """
    device = next(model.parameters()).device
    lengths = [len(p) + len(c) for p, c in zip(prompt_ids, completion_ids, strict=True)]
    width = max(lengths)
    c_max = max(len(c) for c in completion_ids)
    ids = torch.full((len(lengths), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(lengths), width), dtype=torch.long)
    for i, (p, c) in enumerate(zip(prompt_ids, completion_ids, strict=True)):
        ids[i, : len(p) + len(c)] = torch.tensor(list(p) + list(c), dtype=torch.long)
        attention[i, : len(p) + len(c)] = 1
    ids, attention = ids.to(device), attention.to(device)
    logits = model(input_ids=ids, attention_mask=attention).logits  # [b, L, V]
    # Position t predicts token t+1: gather the completion span of each row into [b, C_max].
    starts = torch.tensor([len(p) - 1 for p in prompt_ids], device=device)
    offsets = torch.arange(c_max, device=device)
    pos = (starts[:, None] + offsets[None, :]).clamp(max=width - 2)  # [b, C_max]
    mask = (offsets[None, :] < torch.tensor([len(c) for c in completion_ids], device=device)[:, None]).float()
    span_logits = logits.gather(1, pos[..., None].expand(-1, -1, logits.shape[-1])).float() / temperature
    targets = ids.gather(1, pos + 1)
    logprobs = torch.log_softmax(span_logits, dim=-1).gather(-1, targets[..., None]).squeeze(-1)
    return logprobs * mask, mask


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
) -> tuple[torch.Tensor, PolicyLossStats]:
    """Sum over tokens of the clipped policy-gradient loss (plus ``kl_beta`` * KL to a reference).

    ``ratio = exp(logprobs - old_logprobs)``; per token ``max(-A ratio, -A clip(ratio, 1-eps_low,
    1+eps_high))`` (clip-higher); with ``dual_clip = c``, negative-advantage tokens are also bounded by
    ``-A c``. All tensors [b, C]; ``advantages`` [b] or [b, C]. Returns the *sum* (token-mean is the
    caller's division by the global token count, so micro-batches add up exactly).
    """
    adv = advantages[:, None].expand_as(logprobs) if advantages.dim() == 1 else advantages
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = -adv * ratio
    clipped = -adv * torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high)
    loss = torch.maximum(unclipped, clipped)
    if dual_clip is not None:
        loss = torch.where(adv < 0, torch.minimum(loss, -adv * dual_clip), loss)
    kl_sum = 0.0
    if ref_logprobs is not None and kl_beta > 0:
        # k3 estimator of KL(pi || ref): exp(ref - logp) - (ref - logp) - 1, >= 0 and unbiased.
        delta = ref_logprobs - logprobs
        kl = torch.exp(delta) - delta - 1.0
        loss = loss + kl_beta * kl
        kl_sum = float((kl * mask).sum())
    total = (loss * mask).sum()
    with torch.no_grad():
        active_clip = (clipped > unclipped) & (mask > 0)
        ratio_masked = ratio * mask
        stats = PolicyLossStats(
            tokens=int(mask.sum()),
            clipped=float(active_clip.sum()),
            ratio_sum=float(ratio_masked.sum()),
            ratio_max=float(ratio_masked.max()) if mask.any() else 0.0,
            kl_sum=kl_sum,
        )
    return total, stats
