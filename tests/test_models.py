"""Model loading: local paths that do not exist fail at once, hub names fail fast offline, dropout is off."""

import pytest
import torch

from priorl.config import LoraConfig, ModelConfig
from priorl.grpo.loss import sequence_logprobs
from priorl.models import disable_dropout, load_policy, load_tokenizer, looks_local, resolve_model_path


@pytest.mark.parametrize(
    "path", ["./nothing", "../x/y", "/no/such/model", "~/nope", "model.gguf", "a/b/c", "weights.safetensors"]
)
def test_missing_local_paths_fail_at_once(path, no_network):
    with pytest.raises(ValueError, match="no such file or directory"):
        load_policy(ModelConfig(path=path, device="cpu"))


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to reach the hub (a connection, a download) fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("tried to reach the network")

    monkeypatch.setattr("socket.create_connection", refuse)
    monkeypatch.setattr("transformers.AutoModelForCausalLM.from_pretrained", refuse)
    monkeypatch.setattr("transformers.AutoTokenizer.from_pretrained", refuse)


def test_a_typo_under_an_existing_directory_is_local(tmp_path, monkeypatch, no_network):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    assert looks_local("runs/nothig") and not looks_local("Qwen/Qwen3-0.6B")
    with pytest.raises(ValueError, match="'runs/nothig': no such file or directory"):
        load_tokenizer(ModelConfig(path="runs/nothig"))


def test_an_uncached_hub_name_fails_without_retrying(monkeypatch, tmp_path):
    """Only the local cache is tried when offline or when the hub cannot be reached: no download, no retries."""
    import huggingface_hub.constants as c
    from transformers import AutoModelForCausalLM

    monkeypatch.chdir(tmp_path)
    calls = []
    real = AutoModelForCausalLM.from_pretrained

    def spy(name, **kwargs):
        calls.append(kwargs.get("local_files_only"))
        return real(name, **kwargs)

    monkeypatch.setattr("transformers.AutoModelForCausalLM.from_pretrained", spy)
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    with pytest.raises(ValueError, match="not in the Hugging Face cache, and HF_HUB_OFFLINE is set"):
        load_policy(ModelConfig(path="someone/no-such-model", device="cpu"))
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr("priorl.models._hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(ValueError, match=r"hub \(.*\) cannot be reached"):
        load_policy(ModelConfig(path="someone/no-such-model", device="cpu"))
    assert calls == [True, True]  # the cache only, never an online attempt


def test_package_files(tmp_path):
    with pytest.raises(ValueError, match="'no_such_pkg_xyz' is not installed"):
        resolve_model_path("pkg:no_such_pkg_xyz/model.gguf")
    with pytest.raises(ValueError, match="has no file"):
        resolve_model_path("pkg:priorl/assets/no-such.gguf")
    assert resolve_model_path("pkg:priorl/assets/tiny-arith").endswith("tiny-arith")
    with pytest.raises(ValueError, match="expected pkg:PACKAGE/PATH"):
        resolve_model_path("pkg:priorl")


def _dropout_model(tmp_path):
    """A tiny Llama with attention dropout (a float attribute) saved to disk."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                      num_key_value_heads=2, max_position_embeddings=64, attention_dropout=0.5)  # fmt: skip
    LlamaForCausalLM(cfg).save_pretrained(tmp_path / "m")
    return str(tmp_path / "m")


def _two_forwards(model):
    model.train()
    prompts, completions = [[1, 5, 9, 3], [1, 7]], [[4, 8, 2], [6]]
    with torch.no_grad():
        return [sequence_logprobs(model, prompts, completions, 1.0, 0)[0] for _ in range(2)]


def test_dropout_is_disabled_at_load(tmp_path):
    from transformers import AutoModelForCausalLM

    path = _dropout_model(tmp_path)
    raw = AutoModelForCausalLM.from_pretrained(path)
    a, b = _two_forwards(raw)
    assert not torch.equal(a, b)  # control: with dropout on, the ratio of two forwards is noise
    a, b = _two_forwards(load_policy(ModelConfig(path=path, device="cpu")))
    assert torch.equal(a, b)


def test_lora_dropout_is_disabled_too(tmp_path):
    pytest.importorskip("peft")
    path = _dropout_model(tmp_path)
    lora = LoraConfig(r=4, alpha=8, dropout=0.5, target_modules=["q_proj", "v_proj"])
    model = load_policy(ModelConfig(path=path, device="cpu", lora=lora))
    for p in model.parameters():  # make the adapters matter (B starts at zero)
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.5)
    a, b = _two_forwards(model)
    assert torch.equal(a, b)
    assert all(m.p == 0 for m in model.modules() if isinstance(m, torch.nn.Dropout))


def test_disable_dropout_counts_what_it_turned_off():
    m = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.1), torch.nn.Dropout(0.0))
    m[0].attention_dropout = 0.3
    assert disable_dropout(m) == 2 and m[1].p == 0 and m[0].attention_dropout == 0.0
