"""The shipped tiny model and tokenizer, and the determinism of the pretraining that made them."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import pytest
import torch

from priorl.assets import default_model_path, model_path
from priorl.data import arithmetic_problems
from priorl.pretrain import DEFAULT_PRETRAIN_ARGS, RECIPES, build_tokenizer, file_sha256, pretrain

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tokenizer():
    return transformers.AutoTokenizer.from_pretrained(default_model_path())


@pytest.fixture(scope="module")
def model():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, info = transformers.AutoModelForCausalLM.from_pretrained(default_model_path(), output_loading_info=True)
    assert not [w for w in caught if "weight" in str(w.message).lower()]
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    return model.eval()


def test_shipped_files_are_present_small_and_recorded():
    path = default_model_path()
    for name in (
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "priorl_pretrain.json",
    ):
        assert (path / name).is_file(), name
    assert (path / "model.safetensors").stat().st_size < 5_000_000
    record = json.loads((path / "priorl_pretrain.json").read_text())
    assert record["model_safetensors_sha256"] == file_sha256(path / "model.safetensors")
    # The recorded recipe is the default one, so `pretrain(out)` reproduces the shipped weights.
    assert record["args"] == {**DEFAULT_PRETRAIN_ARGS, "level_weights": list(DEFAULT_PRETRAIN_ARGS["level_weights"])}
    generation = json.loads((path / "generation_config.json").read_text())
    assert (generation["bos_token_id"], generation["eos_token_id"], generation["pad_token_id"]) == (1, 2, 0)


def test_tokenizer_round_trip(tokenizer):
    prompt, answer = "12+34=", "46"
    prompt_ids = tokenizer(prompt)["input_ids"]
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    ids = prompt_ids + answer_ids + [tokenizer.eos_token_id]
    assert prompt_ids[0] == tokenizer.bos_token_id  # the tokenizer prepends <bos>, never appends <eos>
    assert len(prompt_ids) == 1 + len(prompt) and len(answer_ids) == len(answer)  # one token per char
    assert tokenizer.decode(ids, skip_special_tokens=True) == "12+34=46"
    assert tokenizer.decode(ids) == "<bos>12+34=46<eos>"
    assert tokenizer.decode(tokenizer("a b\nc")["input_ids"], skip_special_tokens=True) == "a b\nc"
    assert tokenizer.convert_ids_to_tokens(tokenizer("€")["input_ids"]) == ["<bos>", "<unk>"]
    assert (tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id) == (0, 1, 2)
    assert tokenizer.get_vocab() == build_tokenizer().get_vocab()


def test_shipped_model_is_float32_llama(model):
    assert model.config.model_type == "llama"
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_shipped_model_solves_easy_problems_greedily(model, tokenizer):
    easy = [p for p in arithmetic_problems("test") if p.level == 1][:10]
    tokenizer.padding_side = "left"
    enc = tokenizer([p.prompt for p in easy], return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=6, do_sample=False)
    completions = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    correct = sum(c == p.answer for c, p in zip(completions, easy, strict=True))
    assert correct >= 8, list(zip([p.prompt for p in easy], completions, strict=True))
    # Generation stops at <eos>: the first row's completion is its answer then <eos> (then padding).
    first = out[0, enc["input_ids"].shape[1] :].tolist()
    assert tokenizer.eos_token_id in first


def test_pretrain_is_deterministic(tmp_path):
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    tiny = {"steps": 3, "batch_size": 8, "warmup_steps": 1}
    a = pretrain(tmp_path / "a", seed=3, **tiny, log=lambda s: None)
    b = pretrain(tmp_path / "b", seed=3, **tiny, log=lambda s: None)
    c = pretrain(tmp_path / "c", seed=4, **tiny, log=lambda s: None)
    weights = [(tmp_path / d / "model.safetensors").read_bytes() for d in "abc"]
    assert weights[0] == weights[1]
    assert weights[0] != weights[2]
    assert (
        a["model_safetensors_sha256"] == b["model_safetensors_sha256"] == file_sha256(tmp_path / "a/model.safetensors")
    )
    assert a["args"]["seed"] == 3 and a["args"]["steps"] == 3 and c["args"]["seed"] == 4
    assert json.loads((tmp_path / "a/priorl_pretrain.json").read_text())["args"] == a["args"]
    # The caller's torch settings are restored.
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == (threads, det)
    # The output is a loadable HF model directory.
    loaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "a")
    assert loaded.config.vocab_size == len(build_tokenizer())


def test_shipped_rules_model_is_recorded_with_its_recipe():
    path = model_path("tiny-rules")
    record = json.loads((path / "priorl_pretrain.json").read_text())
    assert record["recipe"] == "tiny-rules" and record["args"] == RECIPES["tiny-rules"]
    assert record["model_safetensors_sha256"] == file_sha256(path / "model.safetensors")
    assert (path / "model.safetensors").stat().st_size < 20_000_000
    assert transformers.AutoTokenizer.from_pretrained(path).get_vocab() == build_tokenizer().get_vocab()


def test_rules_recipe_is_deterministic_and_checks_its_arguments(tmp_path):
    tiny = {"steps": 2, "batch_size": 8, "warmup_steps": 1}
    a = pretrain(tmp_path / "a", recipe="tiny-rules", **tiny, log=lambda s: None)
    b = pretrain(tmp_path / "b", recipe="tiny-rules", **tiny, log=lambda s: None)
    assert a["model_safetensors_sha256"] == b["model_safetensors_sha256"] and a["recipe"] == "tiny-rules"
    with pytest.raises(ValueError, match="takes no 'level_weights'"):
        pretrain(tmp_path / "c", recipe="tiny-rules", level_weights=(1, 1, 1, 1, 1), **tiny)
    with pytest.raises(ValueError, match="unknown pretraining recipe"):
        pretrain(tmp_path / "d", recipe="nope")


def test_light_imports():
    # priorl.data and priorl.assets must not pull torch/transformers/pyarrow into `import priorl` paths.
    code = (
        "import sys, priorl.data, priorl.assets; "
        "heavy = [m for m in ('torch', 'transformers', 'pyarrow') if m in sys.modules]; "
        "assert not heavy, heavy; print(priorl.assets.default_model_path())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("tiny-arith")
