"""Prompt templates: where the learned prompt and the example's text go in the task LM's input, and,
for a masked task LM, where the class word is read (``{mask}``)."""

from __future__ import annotations

import string
from dataclasses import dataclass


MASK_SLOT = "mask"


class TemplateError(ValueError):
    """A template that cannot place the prompt or the example's text."""


@dataclass(frozen=True)
class Template:
    """A format string with a ``{prompt}`` slot and one slot per text field of the example.

    ``Template("{sentence} {prompt}")`` puts the prompt after the sentence; the class is read
    from the task LM's next-token logits right after the formatted text. A masked LM reads it at
    ``{mask}`` instead, written as that model's own mask token: ``"{sentence} {prompt} {mask} ."``
    (RoBERTa sees ``"... <mask> ."``).
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
        unknown = [n for n in names if n not in (*self.fields, "prompt", MASK_SLOT)]
        if unknown:
            raise TemplateError(f"template {self.text!r} names unknown fields {unknown}; "
                                f"available: {['prompt', *self.fields, MASK_SLOT]}")
        if names.count(MASK_SLOT) > 1:
            raise TemplateError(f"template {self.text!r} has {names.count(MASK_SLOT)} {{mask}} slots; a masked LM "
                                "reads the class at exactly one, e.g. '{sentence} {prompt} {mask} .'")

    @property
    def has_mask(self) -> bool:
        """Whether the template has a ``{mask}`` slot (a masked task LM reads the class there)."""
        return "{" + MASK_SLOT + "}" in self.text

    def format(self, example: dict, prompt: str, mask: str | None = None) -> str:
        """The text with ``prompt`` and ``example``'s fields in place; ``mask``: the masked LM's mask token,
        which a template with a ``{mask}`` slot needs."""
        if self.has_mask and mask is None:
            raise TemplateError(f"template {self.text!r} has a {{mask}} slot, which only a masked task LM "
                                "(e.g. roberta-large) reads; drop {mask} for a causal LM")
        slots = {MASK_SLOT: mask} if self.has_mask else {}
        return self.text.format(prompt=prompt, **slots, **{f: example[f] for f in self.fields})

    def split(self, example: dict, mask: str | None = None) -> tuple[str, str]:
        """The text before and after the prompt slot, for inputs built from prompt token ids."""
        marker = "\x00PROMPT\x00"
        before, after = self.format(example, marker, mask).split(marker)
        return before, after

    @property
    def example_first(self) -> bool:
        """Whether every example field comes before the prompt (so examples can be encoded once)."""
        return self.text.index("{prompt}") > max(self.text.index("{" + f + "}") for f in self.fields)
