"""Supervised pretraining of the tiny character-level base models shipped in ``priorl/assets/``.

Two recipes, one per shipped model:

- ``tiny-arith`` (``builtin:tiny-arith``): the train side of the builtin arithmetic family
  (:func:`priorl.data.arithmetic.stream_arithmetic`), deliberately left half-trained: it solves most
  level-1 problems, part of the middle levels and few of the top level. It plateaus quickly under GRPO
  (the saturated case in benchmarks/RESULTS.md).
- ``tiny-reversal`` (``builtin:tiny-reversal``): the train side of the reversal testbed
  (:func:`priorl.data.reversal.stream_reversal`), trained on targets that are right with a
  length-dependent probability and otherwise a systematic slip (the string copied), so that the model
  samples the right answer often but does not say it reliably (see :mod:`priorl.data.reversal`).

``pretrain(out_dir, recipe=...)`` with a recipe's defaults reproduces its shipped weights bit for bit on
CPU (same torch build, same instruction set): it seeds everything, pins the thread count, switches torch
to deterministic algorithms and reads its data in a fixed order from the *train* side of its task family,
so the held-out problems are never seen.

Sequence layout, the same one a GRPO trainer produces: ``<bos> prompt answer <eos>``. The tokenizer
adds ``<bos>`` itself (``tokenizer(prompt)``) and never ``<eos>``; the loss covers the answer and the
``<eos>`` only, as a policy is trained on its completion only.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from priorl.data.arithmetic import LEVELS, stream_arithmetic
from priorl.types import Problem

__all__ = [
    "DEFAULT_PRETRAIN_ARGS",
    "RECIPES",
    "SPECIAL_TOKENS",
    "build_model",
    "build_tokenizer",
    "evaluate_accuracy",
    "file_sha256",
    "pretrain",
    "pretrain_command",
]

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")  # ids 0, 1, 2, 3
# Every printable ASCII character plus newline: enough for arithmetic prompts and for a user's own
# "Q: ... A:" formats (characters the model never saw in pretraining simply start untrained).
VOCAB_CHARS = tuple(chr(c) for c in range(32, 127)) + ("\n",)
MAX_POSITIONS = 128

# The shipped model's recipe. ``pretrain(out)`` with these values reproduces its weights.
DEFAULT_PRETRAIN_ARGS: dict[str, Any] = {
    "steps": 1500,
    "seed": 0,
    "batch_size": 128,
    "lr": 3e-3,
    "warmup_steps": 100,
    "weight_decay": 0.01,
    # Tuned so the result is half-trained (see priorl.data.arithmetic for the levels): little weight on
    # level 2, which the model picks up from levels 1 and 4 anyway, most on 3-digit arithmetic (level 4).
    "level_weights": (0.5, 0.25, 0.5, 1.5, 1.0),
    "threads": 2,
}

# The reversal testbed's recipe. ``pretrain(out, recipe="tiny-reversal")`` reproduces builtin:tiny-reversal.
# Trained long enough that the model reverses and copies exactly and samples the first answer digit at
# close to the recipe's reliability for each length (measured in benchmarks/RESULTS.md). One thread: the
# result does not depend on the machine's core count, and on a busy 2-core machine one thread is faster.
REVERSAL_PRETRAIN_ARGS: dict[str, Any] = {
    "steps": 3000,
    "seed": 0,
    "batch_size": 128,
    "lr": 3e-3,
    "warmup_steps": 100,
    "weight_decay": 0.01,
    "reliability": None,  # None: priorl.data.reversal.BASE_RELIABILITY
    "threads": 1,
}

RECIPES: dict[str, dict[str, Any]] = {"tiny-arith": DEFAULT_PRETRAIN_ARGS, "tiny-reversal": REVERSAL_PRETRAIN_ARGS}

_MODEL_SHAPE = {
    "hidden_size": 128,
    "intermediate_size": 384,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
}


def build_tokenizer():
    """The character-level tokenizer: one token per character, ``<bos>`` prepended, no ``<eos>`` added.

    Built from plain ``tokenizers`` parts (WordLevel over single characters, a per-character Split
    pre-tokenizer, a Fuse decoder) so ``AutoTokenizer.from_pretrained`` loads it without custom code.
    Left padding, because the model's main use is batched generation.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS + VOCAB_CHARS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    # [\s\S] rather than "." so that newlines are characters too.
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()  # concatenate characters back, no spaces between them
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", vocab["<bos>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        padding_side="left",
        clean_up_tokenization_spaces=False,
        model_max_length=MAX_POSITIONS,
    )


def build_model(vocab_size: int, seed: int):
    """A freshly initialised float32 ``LlamaForCausalLM`` of the shipped shape (about 0.9 M parameters)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        max_position_embeddings=MAX_POSITIONS,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        # Untied: the output head and the embedding get different jobs, and 13k parameters are nothing.
        tie_word_embeddings=False,
        pad_token_id=SPECIAL_TOKENS.index("<pad>"),
        bos_token_id=SPECIAL_TOKENS.index("<bos>"),
        eos_token_id=SPECIAL_TOKENS.index("<eos>"),
        **_MODEL_SHAPE,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).float()


@contextmanager
def _deterministic(threads: int):
    """Pin threads and deterministic kernels for the block, then restore the caller's settings."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)


def _lr_at(step: int, steps: int, lr: float, warmup: int) -> float:
    # Linear warmup, then cosine decay to 10% of the peak.
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def _batch(tokenizer, prompts: Sequence[str], answers: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ``<bos> prompt answer <eos>`` ids and the mask of completion targets."""
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    p_ids = tokenizer(list(prompts))["input_ids"]
    a_ids = tokenizer(list(answers), add_special_tokens=False)["input_ids"]
    seqs = [p + a + [eos] for p, a in zip(p_ids, a_ids, strict=True)]
    width = max(map(len, seqs))
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    target = torch.zeros((len(seqs), width), dtype=torch.bool)
    for i, (seq, p) in enumerate(zip(seqs, p_ids, strict=True)):
        ids[i, : len(seq)] = torch.tensor(seq)
        target[i, len(p) : len(seq)] = True  # answer + eos
    return ids, target


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def pretrain(
    out_dir: str | Path,
    *,
    recipe: str = "tiny-arith",
    steps: int | None = None,
    seed: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    warmup_steps: int | None = None,
    weight_decay: float | None = None,
    level_weights: Sequence[float] | None = None,
    reliability: dict[int, float] | None = None,
    threads: int | None = None,
    log_every: int = 0,
    log: Callable[[str], None] = print,
    callback: Callable[[int, Any, Any], None] | None = None,
) -> dict[str, Any]:
    """Train a tiny base model from scratch and save it (model, tokenizer, generation config) to ``out_dir``.

    ``recipe`` picks the task family and the default arguments (:data:`RECIPES`); arguments left None take
    the recipe's values. ``level_weights`` belongs to ``tiny-arith`` (level mix of its stream),
    ``reliability`` to ``tiny-reversal`` (share of right targets per level). Next-token cross-entropy on the
    completion (answer + ``<eos>``) given the prompt, AdamW with linear warmup and cosine decay, gradient
    clipping at 1.0, on a fixed-order stream of train-side problems. Deterministic on CPU for fixed
    arguments: also writes ``priorl_pretrain.json`` with the recipe, the arguments, the final loss and the
    SHA-256 of ``model.safetensors``, and returns that dict. ``log_every`` > 0 prints the loss every so many
    steps; ``callback(step, model, tokenizer)``, if given, runs after every step (for tuning; it must not
    touch torch's RNG or the weights, or the run stops being reproducible).
    """
    if recipe not in RECIPES:
        raise ValueError(f"unknown pretraining recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    given = {
        "steps": steps, "seed": seed, "batch_size": batch_size, "lr": lr, "warmup_steps": warmup_steps,
        "weight_decay": weight_decay, "level_weights": level_weights, "reliability": reliability, "threads": threads,
    }  # fmt: skip
    for key, value in given.items():
        if value is not None and key not in RECIPES[recipe]:
            raise ValueError(f"pretraining recipe {recipe!r} takes no {key!r}")
    args = {**RECIPES[recipe], **{k: v for k, v in given.items() if v is not None}}
    steps, seed, batch_size, lr = args["steps"], args["seed"], args["batch_size"], args["lr"]
    warmup_steps, weight_decay, threads = args["warmup_steps"], args["weight_decay"], args["threads"]
    if steps < 1 or batch_size < 1 or threads < 1:
        raise ValueError("steps, batch_size and threads must be >= 1")
    if "level_weights" in args:
        args["level_weights"] = [float(w) for w in args["level_weights"]]
    if args.get("reliability") is not None:
        args["reliability"] = {int(k): float(v) for k, v in args["reliability"].items()}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with _deterministic(threads):
        tokenizer = build_tokenizer()
        model = build_model(len(tokenizer), seed)
        model.train()
        decay = [p for p in model.parameters() if p.ndim >= 2]
        no_decay = [p for p in model.parameters() if p.ndim < 2]  # norms: no weight decay
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=lr,
            betas=(0.9, 0.98),
            eps=1e-8,
        )
        stream = _pairs(recipe, args)
        loss_value = float("nan")
        for step in range(steps):
            items = [next(stream) for _ in range(batch_size)]
            ids, target = _batch(tokenizer, [prompt for prompt, _ in items], [answer for _, answer in items])
            # Right padding needs no attention mask: pads come after every real token, and a causal
            # model never attends forward; the loss ignores them through ``target``.
            logits = model(input_ids=ids).logits
            mask = target[:, 1:]
            loss = F.cross_entropy(logits[:, :-1][mask], ids[:, 1:][mask])
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(step, steps, lr, warmup_steps)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            loss_value = loss.item()
            if log_every and (step + 1) % log_every == 0:
                log(f"step {step + 1}/{steps}  loss {loss_value:.4f}  {time.perf_counter() - started:.0f}s")
            if callback is not None:
                callback(step + 1, model, tokenizer)
                model.train()
        model.eval()
        _save(model, tokenizer, out)
    info = {
        "recipe": recipe,
        "args": args,
        "final_loss": loss_value,
        "seconds": round(time.perf_counter() - started, 1),
        "torch": torch.__version__,
        "model_safetensors_sha256": file_sha256(out / "model.safetensors"),
        "note": "priorl.pretrain.pretrain(out_dir, **args) reproduces model.safetensors on CPU",
    }
    (out / "priorl_pretrain.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def _pairs(recipe: str, args: dict[str, Any]):
    """The recipe's endless stream of ``(prompt, answer)`` training pairs, in a fixed order."""
    if recipe == "tiny-arith":
        weights = tuple(args["level_weights"])
        return ((it.prompt, it.answer) for it in stream_arithmetic(args["seed"], levels=LEVELS, weights=weights))
    from priorl.data.reversal import stream_reversal

    return stream_reversal(args["seed"], args["reliability"])


def _save(model, tokenizer, out: Path) -> None:
    from transformers import GenerationConfig

    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    # transformers 5 records its own backend class name; the generic fast class is what every
    # transformers version (4.x included) can resolve.
    cfg_path = out / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    cfg_path.write_text(json.dumps(cfg, indent=2) + "\n")


@torch.no_grad()
def evaluate_accuracy(
    model: Any,
    problems: Sequence[Problem],
    *,
    tokenizer: Any = None,
    greedy: bool = True,
    samples: int = 1,
    temperature: float = 1.0,
    seed: int = 0,
    batch_size: int = 250,
    max_new_tokens: int = 8,
) -> dict[str, Any]:
    """Per-level exact-match accuracy of a saved model (a tuning aid; the real eval lives elsewhere).

    Greedy: one completion per problem. Sampled (``greedy=False``): ``samples`` completions per problem
    at ``temperature`` with no top-k/top-p truncation; reports the mean success rate and the share of
    problems whose success rate is strictly between 0 and 1 (``mixed``), what GRPO needs. ``model`` is a
    directory (model and tokenizer loaded from it) or a model object passed with its ``tokenizer``.
    Sampling draws from a forked torch RNG seeded with ``seed``, leaving the caller's RNG untouched.
    """
    if isinstance(model, str | Path):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model)
        model = AutoModelForCausalLM.from_pretrained(model)
    if tokenizer is None:
        raise ValueError("pass the tokenizer with a model object")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        rates = _success_rates(
            model.eval(), tokenizer, problems, greedy, samples, temperature, batch_size, max_new_tokens
        )
    per_level: dict[Any, dict[str, float]] = {}
    for level in sorted({p.level for p in problems}, key=lambda v: (v is None, v)):
        r = [rate for p, rate in zip(problems, rates, strict=True) if p.level == level]
        per_level[level] = {
            "n": len(r),
            "accuracy": sum(r) / len(r),
            "mixed": sum(0 < x < 1 for x in r) / len(r),
        }
    return {"accuracy": sum(rates) / len(rates), "per_level": per_level, "rates": rates}


def _success_rates(model, tokenizer, problems, greedy, samples, temperature, batch_size, max_new_tokens):
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # generation continues each row from its last real token
    n = 1 if greedy else samples
    rates: list[float] = []
    for start in range(0, len(problems), batch_size):
        chunk = problems[start : start + batch_size]
        enc = tokenizer([p.prompt for p in chunk], return_tensors="pt", padding=True)
        kwargs: dict[str, Any] = {"do_sample": False}
        if not greedy:
            kwargs = {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0}
        out = model.generate(**enc, max_new_tokens=max_new_tokens, num_return_sequences=n, **kwargs)
        texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        for i, p in enumerate(chunk):
            hits = sum(t.strip() == p.answer for t in texts[i * n : (i + 1) * n])
            rates.append(hits / n)
    tokenizer.padding_side = old_side
    return rates


def pretrain_command(
    out: str,
    recipe: str = "tiny-arith",
    steps: int | None = None,
    seed: int | None = None,
    log_every: int = 100,
) -> dict[str, Any]:
    """Entry point for ``priorl pretrain``: :func:`pretrain` with the CLI's arguments, the others the recipe's.

    The defaults reproduce the shipped weights of ``recipe``; compare the returned
    ``model_safetensors_sha256`` with the one in the shipped ``priorl_pretrain.json``.
    """
    return pretrain(out, recipe=recipe, steps=steps, seed=seed, log_every=log_every)
