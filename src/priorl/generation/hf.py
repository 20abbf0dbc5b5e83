"""Hugging Face ``generate`` backend: batched sampling from the policy model itself.

What is sampled, and what is recorded
-------------------------------------
Training needs, for every sampled token, its log-prob under the distribution it was drawn from, and the
trainer's forward pass recomputes that quantity as ``log_softmax(logits / temperature)`` over the full
vocabulary. So generation samples from exactly that distribution and nothing else:

- ``generate()`` runs on a *clean* ``transformers.GenerationConfig``: sampling at temperature 1 with
  ``top_k=0``, ``top_p=1``, and the model's own ``generation_config`` swapped out for the duration of the
  call. In transformers 5 an explicit config is still back-filled from ``model.generation_config`` for every
  field left unset, so without the swap a ``repetition_penalty``, ``min_p``, ``no_repeat_ngram_size``,
  ``suppress_tokens``, ... set by the model's authors would change what is sampled while the stored
  log-probs ignored it. The settings skipped this way are logged once.
- The temperature is applied by :class:`SampledTokenLogprobs`, the only logits processor left. transformers
  runs user processors *before* its own warpers (temperature, top-k, top-p, min-p), which is why the
  temperature is not left to ``generate()``. The processor also draws the token: from ``softmax`` of the
  temperature-scaled scores by inverting its cumulative distribution (one uniform number per row), returning
  scores whose argmax is the drawn token to ``generate()``, which runs in its greedy mode; the distribution is
  exactly ``multinomial``'s, at a fraction of its cost. It keeps one step's scores and, on the next call,
  gathers the log-prob of the token that was drawn from them: one ``[batch, vocab]`` tensor alive at a time,
  never one per generated step.
- ``top_p < 1`` is refused: sampling from a truncated distribution while the trainer computes full-vocabulary
  log-probs makes every ratio wrong, and the truncation depends on the current weights, so the trainer cannot
  reproduce it either. There is no ``top_k`` for the same reason.

Stopping
--------
A sequence stops at any of the EOS ids (``tokenizer.eos_token_id`` and every id in
``model.generation_config.eos_token_id``, int or list), or at the end of the first ``stop`` string, or at
``max_new_tokens``. The completion's tokens and log-probs are cut at the same place: an EOS token is kept;
for a stop string, every token up to and including the one that completes it is kept (the model is trained
to produce the stop, as it is to produce EOS), while the *text* handed to the verifier ends just before
the stop string. A token that straddles the stop string (``"\\n\\nQ"`` for the stop ``"\\n\\n"``) is kept
whole in the tokens; its characters past the stop are not in the text.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence

import torch

from priorl.generation.base import GenerationOutput

logger = logging.getLogger("priorl.generation")

__all__ = ["HFGenerator", "SampledTokenLogprobs", "cut_completion", "eos_token_ids", "inverse_cdf_sample"]

# generation_config fields that change what is sampled; reported when the model sets them and priorl ignores them.
_SAMPLING_FIELDS = (
    "temperature", "top_k", "top_p", "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff", "top_h",
    "repetition_penalty", "encoder_repetition_penalty", "no_repeat_ngram_size", "bad_words_ids", "suppress_tokens",
    "begin_suppress_tokens", "sequence_bias", "min_length", "min_new_tokens", "forced_bos_token_id",
    "forced_eos_token_id", "exponential_decay_length_penalty", "renormalize_logits", "guidance_scale",
    "watermarking_config", "stop_strings", "do_sample",
)  # fmt: skip


def _hf_model(model):
    """The transformers model under a peft wrapper (its ``generation_config`` is the one ``generate`` reads)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def eos_token_ids(model, tokenizer) -> list[int]:
    """Every id that ends a completion: the tokenizer's EOS and the model's ``generation_config.eos_token_id``."""
    ids: list[int] = []
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    config = getattr(_hf_model(model), "generation_config", None)
    extra = getattr(config, "eos_token_id", None) if config is not None else None
    if extra is not None:
        for i in [extra] if isinstance(extra, int) else list(extra):
            if int(i) not in ids:
                ids.append(int(i))
    return ids


class SampledTokenLogprobs:
    """The last logits processor: divides by the temperature, records each sampled token's log-prob and, with
    ``sample=True``, draws the token itself.

    Called once per decoding step with ``input_ids`` of length L (prompt + tokens so far) and the step's
    scores; the scores it returns are what ``generate()`` samples token L from. On the next call (or in
    :meth:`finish`) token L is in ``input_ids`` and its log-prob ``scores[token] - logsumexp(scores)`` is
    gathered. Steps are keyed by position, so an extra step that ``generate()`` undoes is ignored.

    ``sample=True`` (with ``generate()`` in its greedy mode) draws each row's token from ``softmax(scores)`` by
    inverting its cumulative distribution at one uniform number per row (float64 sums), and returns scores that
    are ``-inf`` except at the drawn token, which greedy decoding then takes. The distribution is exactly the
    one ``multinomial`` samples from, at one random number per row instead of one per vocabulary entry:
    ``torch.multinomial`` draws an exponential variate for each of the vocabulary's entries at every step (61 ms
    a step for 64 rows x 49k on this CPU, a quarter of SmolLM2's generation time; benchmarks/RESULTS.md round
    10). The uniforms come from torch's global generator, so a seeded run draws the same tokens again.
    """

    def __init__(self, temperature: float, *, sample: bool = False) -> None:
        self.temperature = float(temperature)
        self.sample = bool(sample)
        self._pending: tuple[int, torch.Tensor, torch.Tensor] | None = None  # (position, scores, logsumexp)
        self._recorded: dict[int, torch.Tensor] = {}  # position -> [b] log-prob of the token sampled there

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self._flush(input_ids)
        if self.temperature != 1.0:
            scores = scores / self.temperature
        lse = torch.logsumexp(scores, dim=-1)
        self._pending = (input_ids.shape[1], scores, lse)
        if not self.sample:
            return scores
        return _one_hot_scores(scores, inverse_cdf_sample(scores, lse))

    def _flush(self, input_ids: torch.Tensor) -> None:
        if self._pending is None:
            return
        position, scores, lse = self._pending
        if input_ids.shape[1] > position:
            token = input_ids[:, position : position + 1]
            self._recorded[position] = scores.gather(-1, token).squeeze(-1) - lse
            self._pending = None

    def finish(self, sequences: torch.Tensor, start: int) -> torch.Tensor:
        """[b, T] log-probs of ``sequences[:, start:]``; releases the kept scores."""
        self._flush(sequences)
        self._pending = None
        positions = range(start, sequences.shape[1])
        if not positions:
            return torch.zeros((sequences.shape[0], 0), device=sequences.device)
        out = torch.stack([self._recorded[p] for p in positions], dim=1)
        self._recorded.clear()
        return out


def inverse_cdf_sample(scores: torch.Tensor, lse: torch.Tensor | None = None) -> torch.Tensor:
    """One token per row of ``scores`` [b, V] drawn from ``softmax(scores)``: the first index whose float64
    cumulative probability exceeds ``u * total`` for ``u`` uniform in [0, 1) (one number per row, torch's global
    generator). Tokens of probability 0 are never drawn. Returns [b, 1] int64. O(b V)."""
    if lse is None:
        lse = torch.logsumexp(scores, dim=-1)
    cdf = (scores.double() - lse.double()[:, None]).exp().cumsum(dim=-1)  # [b, V]
    u = torch.rand((scores.shape[0], 1), dtype=torch.float64, device=scores.device) * cdf[:, -1:]
    token = torch.searchsorted(cdf, u, right=True)  # first index with cdf > u: never a zero-probability token
    return token.clamp_(max=scores.shape[-1] - 1)


def _one_hot_scores(scores: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
    """Scores that make greedy decoding take ``token`` [b, 1]: 0 there, -inf elsewhere."""
    out = torch.full_like(scores, float("-inf"))
    return out.scatter_(1, token, 0.0)


def _accepts(model, name: str) -> bool:
    import inspect

    try:
        return name in inspect.signature(_hf_model(model).forward).parameters
    except (TypeError, ValueError):
        return False


def _cache_argument(model) -> str:
    """The name under which this model's forward (and ``generate()``) takes a KV cache, or "" if neither."""
    for name in ("cache", "past_key_values"):  # transformers renamed past_key_values to cache in 5.x
        if _accepts(model, name):
            return name
    return ""


class _StopStrings:
    """Stopping criterion: a row is done once the text of its last few new tokens contains a stop string.

    Only decides when generation may stop early; where the completion is cut is computed exactly
    afterwards (:meth:`HFGenerator._cut`). The text of a row's window is decoded only at the steps where its
    new token may complete a stop string (``may_complete``, from :func:`stop_completion_table`; None: at every
    step), and never again once the row is done, so a step costs one gather over the batch plus a decode of
    the few rows whose new token could end a stop string, not a decode of every row.
    """

    def __init__(self, tokenizer, stops: Sequence[str], start: int, may_complete: torch.Tensor | None = None) -> None:
        self.tokenizer, self.stops, self.start = tokenizer, list(stops), start
        # A stop string of n characters spans at most n tokens (+ slack for tokens that decode to nothing).
        self.window = max(len(s) for s in self.stops) + 4
        self.may_complete = may_complete
        self._done: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        if self._done is None or self._done.shape[0] != input_ids.shape[0]:
            self._done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        if input_ids.shape[1] > self.start:
            check = ~self._done
            if self.may_complete is not None:
                table = self.may_complete.to(input_ids.device)
                self.may_complete = table
                check &= table[input_ids[:, -1].clamp(0, table.shape[0] - 1)]
            rows = check.nonzero().flatten()
            if rows.numel():
                lo = max(self.start, input_ids.shape[1] - self.window)
                tails = self.tokenizer.batch_decode(input_ids[rows, lo:].tolist(), skip_special_tokens=True)
                hit = [r for r, t in zip(rows.tolist(), tails, strict=True) if any(s in t for s in self.stops)]
                if hit:
                    self._done[hit] = True
        return self._done.clone()


def _ends_a_stop(text: str, stops: Sequence[str]) -> bool:
    """Whether a stop string can end inside ``text`` when ``text`` is appended to any other: a prefix of ``text``
    is a suffix of a stop string, or a stop string lies in ``text``."""
    return any(s in text or any(text[:k] == s[-k:] for k in range(1, min(len(s), len(text)) + 1)) for s in stops)


def stop_completion_table(tokenizer, stops: Sequence[str]) -> torch.Tensor | None:
    """For each token id, whether appending it to a row can complete one of ``stops``; the last entry (True)
    stands for ids past the tokenizer's. None when the tokenizer's decoding is not a plain concatenation of
    what each token adds (cleanup of tokenization spaces), where every row is decoded at every step.

    What a token adds to a text is taken as ``decode([a, id])`` minus ``decode([a])`` for a plain token ``a``
    (which keeps a leading space that decoding the token alone would strip), and the token decoded alone too;
    a token whose text holds a replacement character (a partial UTF-8 sequence, completed by the next token) is
    always True. A stop string that appears in a row's text ends inside the text of the token that completed it,
    so a row whose new token is False cannot have just completed one. O(V) once per generator.
    """
    if not stops or getattr(tokenizer, "clean_up_tokenization_spaces", False):
        return None
    anchor = tokenizer("a", add_special_tokens=False)["input_ids"]
    if not anchor:
        return None
    base = tokenizer.decode(anchor, skip_special_tokens=True)
    n = len(tokenizer)
    with_anchor = tokenizer.batch_decode([[*anchor, i] for i in range(n)], skip_special_tokens=True)
    alone = tokenizer.batch_decode([[i] for i in range(n)], skip_special_tokens=True)
    flags = []
    for joined, own in zip(with_anchor, alone, strict=True):
        added = joined[len(base) :] if joined.startswith(base) else None
        flags.append(
            added is None
            or "\ufffd" in added
            or "\ufffd" in own
            or _ends_a_stop(added, stops)
            or _ends_a_stop(own, stops)
        )
    flags.append(True)
    return torch.tensor(flags, dtype=torch.bool)


@contextlib.contextmanager
def _clean_model_generation_config(model, eos_ids: list[int], pad_id: int):
    """Swap the model's generation_config for one that sets nothing but special ids, for one call."""
    from transformers import GenerationConfig

    hf = _hf_model(model)
    saved = hf.generation_config
    hf.generation_config = GenerationConfig(eos_token_id=eos_ids, pad_token_id=pad_id)
    try:
        yield
    finally:
        hf.generation_config = saved


class HFGenerator:
    """Sample with ``model.generate`` on the training model (no weight copy, so no sync needed).

    Sequences are generated in chunks of ``batch_size`` with left padding. Behavior log-probs are those of
    the distribution sampled from, ``log_softmax(logits / temperature)``, recorded during generation (see the
    module docstring): the same quantity the trainer's forward computes, so on-policy ratios start at 1.

    ``encode`` turns prompts into token ids (a :class:`priorl.data.PromptFormatter`'s ``encode``, to apply a
    chat template); by default the tokenizer's plain encoding. ``stop`` lists stop strings. ``autocast`` makes
    the context each ``generate()`` chunk runs in (:meth:`priorl.precision.Precision.autocast`). With
    ``share_prompts`` (the default) the prompt of a group is prefilled once and its KV cache copied to the
    group's rows (:meth:`_shared_prompt_cache`); ``False`` prefills every row.
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
        stop: Sequence[str] = (),
        encode: Callable[[Sequence[str]], list[list[int]]] | None = None,
        share_prompts: bool = True,
        autocast: Callable[[], contextlib.AbstractContextManager] | None = None,
    ) -> None:
        if top_p != 1.0:
            raise ValueError(
                f"top_p={top_p}: sampling from a top-p truncated distribution is refused, because the trainer "
                "computes log-probs over the full softmax(logits / temperature) and cannot reproduce the "
                "truncation (it depends on the weights at sampling time), so every ratio would be wrong. "
                "Use top_p=1.0 and lower the temperature instead."
            )
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if any(not isinstance(s, str) or not s for s in stop):
            raise ValueError(f"stop strings must be non-empty strings, got {list(stop)!r}")
        self.model = model
        self.tokenizer = tokenizer
        self.temperature = float(temperature)
        self.top_p = 1.0
        self.max_new_tokens = int(max_new_tokens)
        self.batch_size = int(batch_size)
        self.stop = list(stop)
        self.eos_ids = eos_token_ids(model, tokenizer)
        if not self.eos_ids:
            raise ValueError("the tokenizer has no EOS token: generation could never stop on its own")
        self.eos_id = self.eos_ids[0]
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_id)
        self._encode = encode
        self.share_prompts = bool(share_prompts)
        # A fresh context per generate() chunk (bf16-mixed: torch.autocast; priorl.precision), never one held
        # across a weight update: autocast caches bf16 copies of the weights until its context exits.
        self._autocast = autocast or contextlib.nullcontext
        self._cache_kwarg: str | None = None  # generate()'s name for a given cache ("" : not shareable)
        self._stop_table: torch.Tensor | None = None  # stop_completion_table, computed at the first generate
        self._stop_table_done = False
        self._report_ignored_settings()

    def _report_ignored_settings(self) -> None:
        config = getattr(_hf_model(self.model), "generation_config", None)
        if config is None:
            return
        from transformers import GenerationConfig

        defaults = GenerationConfig()
        ignored = {}
        for name in _SAMPLING_FIELDS:
            value = getattr(config, name, None)
            if value is not None and value != getattr(defaults, name, None):
                ignored[name] = value
        if ignored:
            shown = ", ".join(f"{k}={v!r}" for k, v in ignored.items())
            logger.warning(
                "sampling from softmax(logits / %g) only, so that the recorded log-probs are those of the "
                "distribution sampled from; ignoring the model's generation_config settings: %s",
                self.temperature,
                shown,
            )

    def sync_weights(self) -> None:
        """Nothing to do: generation runs on the training model."""

    def encode_prompts(self, prompts: Sequence[str]) -> list[list[int]]:
        """Token ids of each prompt, as the model sees them."""
        if self._encode is not None:
            return self._encode(prompts)
        return [list(ids) for ids in self.tokenizer(list(prompts))["input_ids"]]

    @torch.no_grad()
    def generate(
        self,
        prompts: Sequence[str],
        n: int,
        *,
        greedy: bool = False,
        max_new_tokens: int | None = None,
        batch_size: int | None = None,
    ) -> GenerationOutput:
        """``n`` completions per prompt (grouped by prompt); ``greedy`` decodes one deterministic completion.

        ``batch_size`` (default: the generator's) bounds the sequences per ``generate()`` call, hence memory.
        """
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        max_new = int(max_new_tokens or self.max_new_tokens)
        chunk = int(batch_size or self.batch_size)
        if chunk < 1:
            raise ValueError(f"batch_size must be >= 1, got {chunk}")
        encoded = self.encode_prompts(prompts)
        seqs = [ids for ids in encoded for _ in range(n)]
        was_training = self.model.training
        self.model.eval()
        out = GenerationOutput([], [], [], [], [])
        try:
            with _clean_model_generation_config(self.model, self.eos_ids, self.pad_id):
                for start in range(0, len(seqs), chunk):
                    with self._autocast():
                        self._generate_chunk(seqs[start : start + chunk], greedy, max_new, out)
        finally:
            if was_training:
                self.model.train()
        return out

    def _generate_chunk(self, prompts: list[list[int]], greedy: bool, max_new: int, out: GenerationOutput) -> None:
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        device = next(self.model.parameters()).device
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, p in enumerate(prompts):  # left padding: every prompt ends where generation starts
            input_ids[i, width - len(p) :] = torch.tensor(p, dtype=torch.long)
            attention[i, width - len(p) :] = 1
        # Every field that shapes the distribution is set to its neutral value explicitly (an unset one would be
        # back-filled with transformers' global defaults, e.g. top_k=50).
        # generate() decodes greedily in both modes: when sampling, the recorder draws each token itself (inverse CDF,
        # one uniform per row) and hands generate() scores whose argmax is the drawn token (SampledTokenLogprobs).
        config = GenerationConfig(
            max_new_tokens=max_new, do_sample=False, num_beams=1, repetition_penalty=1.0,
            no_repeat_ngram_size=0, min_length=0, eos_token_id=self.eos_ids, pad_token_id=self.pad_id,
            return_dict_in_generate=False,
        )  # fmt: skip
        recorder = SampledTokenLogprobs(1.0 if greedy else self.temperature, sample=not greedy)
        criteria = StoppingCriteriaList([])
        if self.stop:
            if not self._stop_table_done:
                self._stop_table, self._stop_table_done = stop_completion_table(self.tokenizer, self.stop), True
            criteria.append(_StopStrings(self.tokenizer, self.stop, width, self._stop_table))
        input_ids, attention = input_ids.to(device), attention.to(device)
        extra = self._shared_prompt_cache(prompts, input_ids, attention) if self.share_prompts else {}
        sequences = self.model.generate(
            input_ids=input_ids,
            attention_mask=attention,
            generation_config=config,
            logits_processor=LogitsProcessorList([recorder]),
            stopping_criteria=criteria,
            **extra,
        )
        token_logprobs = recorder.finish(sequences, width)  # [b, T]
        # Log-probs leave as one float32 array (one device-to-host copy), a row's kept part copied out of it.
        tokens, lps = sequences[:, width:].tolist(), token_logprobs.float().cpu().numpy()
        for prompt, row, lp in zip(prompts, tokens, lps, strict=True):
            end, finished, text = self._cut(row)
            out.prompt_ids.append(prompt)
            out.completion_ids.append(row[:end])
            out.logprobs.append(lp[:end].copy())
            out.finished.append(finished)
            out.texts.append(text)

    def _shared_prompt_cache(self, prompts: list[list[int]], input_ids: torch.Tensor, attention: torch.Tensor) -> dict:
        """The KV cache of every prompt but its last token, computed once per distinct prompt of the chunk and
        copied to its rows: a group's G rows share one prompt, so the prefill (most of the work when prompts
        are longer than completions) runs on B rows instead of B x G. ``generate()`` then starts from the
        last prompt token. The cached keys and values are those the full prefill computes (same tokens, mask
        and positions), so what is sampled and the recorded log-probs are unchanged up to float rounding.

        Returns ``generate()``'s cache argument, or ``{}`` (nothing shared: no prompt repeats, one-token
        prompts, or a model whose cache cannot be indexed by row).
        """
        index: dict[tuple[int, ...], int] = {}
        rows = [index.setdefault(tuple(p), len(index)) for p in prompts]
        width = input_ids.shape[1]
        if len(index) == len(prompts) or width < 2:
            return {}
        first_row: dict[int, int] = {}
        for i, u in enumerate(rows):
            first_row.setdefault(u, i)
        first = torch.tensor(list(first_row.values()), device=input_ids.device)  # in order of u
        ids, mask = input_ids[first, :-1], attention[first, :-1]
        position_ids = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)  # generate()'s positions for left padding
        kwargs = dict(input_ids=ids, attention_mask=mask, position_ids=position_ids, use_cache=True)
        if self._cache_kwarg is None:
            self._cache_kwarg = _cache_argument(self.model)
        if self._cache_kwarg == "":
            return {}
        if _accepts(self.model, "logits_to_keep"):
            kwargs["logits_to_keep"] = 1  # only the cache is needed, not the prompt's logits
        out = self.model(**kwargs)
        cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
        if cache is None or not hasattr(cache, "batch_select_indices"):
            self._cache_kwarg = ""  # this model's cache cannot be shared: prefill every row from now on
            return {}
        cache.batch_select_indices(torch.tensor(rows, device=input_ids.device))
        return {self._cache_kwarg: cache}

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def _cut(self, row: list[int]) -> tuple[int, bool, str]:
        return cut_completion(row, self.eos_ids, self.stop, self._decode)


def cut_completion(
    row: list[int], eos_ids: Sequence[int], stop: Sequence[str], decode: Callable[[list[int]], str]
) -> tuple[int, bool, str]:
    """Where a generated row ends: ``(tokens kept, stopped on its own, text for the verifier)``.

    The row is cut after the first EOS id (kept), then after the token that completes the first stop string
    in the text (kept); the text ends just before that stop string. See the module docstring.
    """
    eos = set(eos_ids)
    end = next((i + 1 for i, t in enumerate(row) if t in eos), None)
    finished = end is not None
    end = len(row) if end is None else end
    text = decode(row[:end])
    hits = [(text.find(s), s) for s in stop if s in text]
    if not hits:
        return end, finished, text
    _, first = min(hits)
    # The fewest tokens whose text contains the stop string (prefix texts only grow, so bisect).
    lo, hi = 1, end
    while lo < hi:
        mid = (lo + hi) // 2
        if first in decode(row[:mid]):
            hi = mid
        else:
            lo = mid + 1
    kept = decode(row[:lo])
    return lo, True, kept[: kept.find(first)]
