"""Which tokens a prompt may be written with: static vocabulary masks for the policy's action space.

RLPrompt samples from the whole vocabulary, and with a BPE tokenizer most of it is word pieces:
its learned prompts are strings of fragments (``' surpr surpr includadays'``). The ``words``
action space keeps only tokens that are a whole English word with a leading space (so they
start a new word after the text before them): the token's letters must form a word that the
``simplemma`` English lexicon knows, which is what rejects fragments such as ``' surpr'`` or
``' psychiat'`` that a "starts with a space and has letters" rule would let through.
``words+punctuation`` also admits pure punctuation tokens (``':'``, ``' -'``), which prompts such
as ``' Sentiment:'`` need.
"""

from __future__ import annotations

import functools
import re

import torch

ACTION_SPACES = ("all", "words", "words+punctuation")
_WORD = re.compile(r"^ [A-Za-z]+(?:['-][A-Za-z]+)?$")
_PUNCTUATION = re.compile(r"^ ?[!-/:-@\[-`{-~]{1,2}$")  # ASCII punctuation, with an optional leading space


@functools.lru_cache(maxsize=65536)
def is_english_word(word: str) -> bool:
    """``word`` (letters, maybe one inner apostrophe or hyphen) is in simplemma's English lexicon."""
    import simplemma

    return any(simplemma.is_known(form, lang="en") for form in dict.fromkeys((word, word.lower())))


def is_word_token(text: str) -> bool:
    """A decoded token that starts a new, whole English word: a leading space, then a known word."""
    return bool(_WORD.match(text)) and is_english_word(text[1:])


def is_punctuation_token(text: str) -> bool:
    return bool(_PUNCTUATION.match(text))


def vocabulary_mask(tokenizer, space: str = "all", vocab_size: int | None = None) -> torch.Tensor:
    """Bool ``[vocab_size]``: the tokens the action space ``space`` admits (special tokens included;
    the policy removes those separately)."""
    if space not in ACTION_SPACES:
        raise ValueError(f"unknown action space {space!r}; choose one of {list(ACTION_SPACES)}")
    size = vocab_size or len(tokenizer)
    if space == "all":
        return torch.ones(size, dtype=torch.bool)
    texts = _decoded_vocabulary(tokenizer)
    keep = [is_word_token(t) or (space == "words+punctuation" and is_punctuation_token(t)) for t in texts]
    mask = torch.zeros(size, dtype=torch.bool)
    mask[:len(keep)] = torch.tensor(keep[:size])
    return mask


def _decoded_vocabulary(tokenizer) -> list[str]:
    """Each token id's text as it reads inside a prompt (byte-level pieces decoded, not ``'Ġword'``)."""
    return tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
