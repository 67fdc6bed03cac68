"""Sentence embeddings: the per-encoder memo runs the encoder once per sentence and changes no value."""

import torch

from rlprompt_interp.models import load_lm
from rlprompt_interp.style.sentence_embeddings import _encode, embed_sentences


def test_repeated_sentences_are_embedded_once_with_the_same_vectors():
    encoder = load_lm("minilm-l6", role="task", dtype="float32")
    encoded = []
    hook = encoder.model.register_forward_pre_hook(
        lambda module, args, kwargs: encoded.append(kwargs["input_ids"].shape[0]), with_kwargs=True)
    try:
        first = embed_sentences(encoder, ["memo test: the soup was cold", "memo test: great staff"])
        second = embed_sentences(encoder, ["memo test: great staff", "memo test: a new one",
                                           "memo test: the soup was cold", "memo test: a new one"])
    finally:
        hook.remove()
    assert encoded == [2, 1]  # the second call ran the encoder on its one unseen sentence
    fresh = _encode(encoder, ["memo test: the soup was cold", "memo test: great staff", "memo test: a new one"],
                    batch_size=64, max_length=128, normalize=True, progress=None)
    assert torch.allclose(first, fresh[:2], atol=1e-6)
    assert torch.allclose(second, fresh[[1, 2, 0, 2]], atol=1e-6)
