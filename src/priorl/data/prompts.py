"""How a problem's prompt becomes the token ids the model sees: raw text, or a chat template.

``data.chat_template`` decides:

- ``"auto"`` (default): when the tokenizer has a chat template, each prompt becomes the user message of a
  one-turn conversation (after the optional ``data.system_prompt``), rendered with
  ``add_generation_prompt=True`` so the model answers as the assistant. A prompt that already contains one
  of the tokenizer's special-token strings (``<|im_start|>``, ...) counts as formatted already and is used
  as it is. A tokenizer without a template (the shipped ``tiny-arith``) gets the raw prompt, as before.
- ``"none"``: the raw prompt, always (a base model; or prompts formatted by hand).
- a path to a Jinja file: that template instead of the tokenizer's (a template for a base model).

Rendered text is tokenized with ``add_special_tokens=False`` (the template writes the special tokens
itself; adding a BOS again would double it), raw prompts with the tokenizer's defaults.
A ``system_prompt`` needs a template: with ``"none"`` or a tokenizer without one it is an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["PromptFormatter"]


class PromptFormatter:
    """Turns prompts into token ids (and rendered text) following ``chat_template`` and ``system_prompt``."""

    def __init__(self, tokenizer, chat_template: str = "auto", system_prompt: str | None = None) -> None:
        self.tokenizer = tokenizer
        self.system_prompt = system_prompt
        self.template: str | None
        if chat_template == "none":
            self.template = None
        elif chat_template == "auto":
            self.template = getattr(tokenizer, "chat_template", None) or None
        else:
            path = Path(chat_template)
            if not path.is_file():
                raise ValueError(
                    f"data.chat_template: {chat_template!r} is not 'auto', 'none' or an existing Jinja file"
                )
            self.template = path.read_text(encoding="utf-8")
            if not self.template.strip():
                raise ValueError(f"data.chat_template: {chat_template} is empty")
        if isinstance(self.template, dict):  # tokenizers with several named templates: use the default one
            self.template = self.template.get("default")
        if system_prompt is not None and self.template is None:
            why = "data.chat_template is 'none'" if chat_template == "none" else "the tokenizer has no chat template"
            raise ValueError(
                f"data.system_prompt is set but {why}: a system prompt needs a chat template "
                "(set data.chat_template to a Jinja file, or put the instruction in the prompts)"
            )
        # Strings that mark a prompt as already formatted (e.g. "<|im_start|>").
        self._markers = [t for t in getattr(tokenizer, "all_special_tokens", []) if t and len(t) > 1]

    @property
    def uses_template(self) -> bool:
        return self.template is not None

    def is_formatted(self, prompt: str) -> bool:
        """Whether ``prompt`` already contains a special-token string, so the template is not applied again."""
        return any(m in prompt for m in self._markers)

    def render(self, prompt: str) -> str:
        """The text the model sees for ``prompt`` (the raw prompt when no template applies)."""
        if self.template is None or self.is_formatted(prompt):
            return prompt
        messages = []
        if self.system_prompt is not None:
            messages.append({"role": "system", "content": self.system_prompt})
        messages.append({"role": "user", "content": prompt})
        try:
            return self.tokenizer.apply_chat_template(
                messages, chat_template=self.template, tokenize=False, add_generation_prompt=True
            )
        except Exception as exc:  # jinja2 raises its own error types (undefined names, syntax)
            raise ValueError(f"the chat template cannot render a prompt ({type(exc).__name__}: {exc})") from None

    def encode(self, prompts: Sequence[str]) -> list[list[int]]:
        """Token ids of each prompt, as the model will see them."""
        if self.template is None:
            return [list(ids) for ids in self.tokenizer(list(prompts))["input_ids"]]
        out: list[list[int]] = []
        for prompt in prompts:
            if self.is_formatted(prompt):
                out.append(list(self.tokenizer(prompt)["input_ids"]))
            else:
                out.append(list(self.tokenizer(self.render(prompt), add_special_tokens=False)["input_ids"]))
        return out
