"""PromptFormatter: raw prompts, the tokenizer's chat template, a Jinja file, a system prompt."""

import pytest

from priorl.config import ModelConfig
from priorl.data import PromptFormatter
from priorl.models import load_tokenizer

TEMPLATE = (
    "{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}[assistant]{% endif %}"
)


@pytest.fixture
def tok():
    return load_tokenizer(ModelConfig(path="builtin:tiny-arith"))


def test_auto_without_a_template_is_the_raw_prompt(tok):
    f = PromptFormatter(tok)
    assert not f.uses_template
    assert f.encode(["12+34="]) == [tok("12+34=")["input_ids"]]
    assert f.render("12+34=") == "12+34="


def test_a_system_prompt_needs_a_template(tok):
    with pytest.raises(ValueError, match="system_prompt is set but the tokenizer has no chat template"):
        PromptFormatter(tok, "auto", "be brief")
    with pytest.raises(ValueError, match="chat_template is 'none'"):
        PromptFormatter(tok, "none", "be brief")


def test_the_tokenizers_template_with_a_system_prompt(tok):
    tok.chat_template = TEMPLATE
    f = PromptFormatter(tok, "auto", "Be brief.")
    assert f.render("1+2=") == "[system]Be brief.\n[user]1+2=\n[assistant]"
    # the rendered text is tokenized without adding special tokens again (no second BOS)
    assert f.encode(["1+2="]) == [tok(f.render("1+2="), add_special_tokens=False)["input_ids"]]
    assert PromptFormatter(tok, "none").encode(["1+2="]) == [tok("1+2=")["input_ids"]]


def test_a_formatted_prompt_is_left_alone(tok):
    tok.chat_template = TEMPLATE
    f = PromptFormatter(tok)
    assert f.render("<bos>1+2=") == "<bos>1+2="


def test_a_jinja_file(tok, tmp_path):
    path = tmp_path / "t.jinja"
    path.write_text(TEMPLATE)
    assert PromptFormatter(tok, str(path)).render("7*8=") == "[user]7*8=\n[assistant]"
    with pytest.raises(ValueError, match="not 'auto', 'none' or an existing Jinja file"):
        PromptFormatter(tok, str(tmp_path / "missing.jinja"))
