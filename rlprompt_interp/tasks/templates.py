"""Prompt templates: where the learned prompt and the example's text go in the task LM's input."""

from __future__ import annotations

import string
from dataclasses import dataclass


class TemplateError(ValueError):
    """A template that cannot place the prompt or the example's text."""


@dataclass(frozen=True)
class Template:
    """A format string with a ``{prompt}`` slot and one slot per text field of the example.

    ``Template("{sentence} {prompt}")`` puts the prompt after the sentence; the class is read
    from the task LM's next-token logits right after the formatted text.
    """

    text: str
    fields: tuple[str, ...] = ("sentence",)

    def __post_init__(self):
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(self.text) if name is not None]
        except ValueError as error:
            raise TemplateError(f"template {self.text!r} is not a valid format string: {error}") from error
        if "prompt" not in names:
            raise TemplateError(f"template {self.text!r} has no {{prompt}} slot; add one, e.g. '{{sentence}} {{prompt}}'")
        missing = [f for f in self.fields if f not in names]
        if missing:
            slots = " ".join("{" + f + "}" for f in missing)
            raise TemplateError(f"template {self.text!r} has no slot for {slots}; add it, e.g. '{slots} {{prompt}}'")
        unknown = [n for n in names if n not in (*self.fields, "prompt")]
        if unknown:
            raise TemplateError(f"template {self.text!r} names unknown fields {unknown}; available: {['prompt', *self.fields]}")

    def format(self, example: dict, prompt: str) -> str:
        return self.text.format(prompt=prompt, **{f: example[f] for f in self.fields})

    def split(self, example: dict) -> tuple[str, str]:
        """The text before and after the prompt slot, for inputs built from prompt token ids."""
        marker = "\x00PROMPT\x00"
        before, after = self.format(example, marker).split(marker)
        return before, after

    @property
    def example_first(self) -> bool:
        """Whether every example field comes before the prompt (so examples can be encoded once)."""
        return self.text.index("{prompt}") > max(self.text.index("{" + f + "}") for f in self.fields)
