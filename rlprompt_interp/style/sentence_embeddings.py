"""Sentence embeddings from an encoder (MiniLM by default): mean of the token states over the mask.

One implementation shared by the content-preservation reward (cosine of input and output) and the
locally trained style classifier (a head over these embeddings), so both see the same features.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import Sequence

import torch

from ..models import LoadedModel

DEFAULT_ENCODER = "minilm-l6"


MEMO_SIZE = 8192  # recent sentences kept per encoder: a reward step embeds its rewrites once for content and style


_memos: "weakref.WeakKeyDictionary[torch.nn.Module, OrderedDict]" = weakref.WeakKeyDictionary()


def embed_sentences(encoder: LoadedModel, texts: Sequence[str], *, batch_size: int = 64, max_length: int = 128,
                    normalize: bool = True, progress=None) -> torch.Tensor:
    """Mean-pooled last hidden states of each text, shape ``[len(texts), hidden]`` (float32, CPU).

    Texts are sorted by length so batches waste little padding; ``normalize`` makes every row unit
    length (what all-MiniLM-L6-v2 is trained for, so dot products are cosines). The last
    ``MEMO_SIZE`` sentences embedded by each encoder are remembered, so the content reward and the
    style classifier scoring the same rewrites run the encoder once. ``progress`` is an optional
    callable taking the number of texts just done.
    """
    texts = list(texts)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    memo = _memos.setdefault(encoder.model, OrderedDict())
    keys = [(text, max_length, normalize) for text in texts]
    missing = list(dict.fromkeys(key for key in keys if key not in memo))
    if progress is not None and len(keys) > len(missing):
        progress(len(keys) - len(missing))
    fresh = _encode(encoder, [text for text, _, _ in missing], batch_size=batch_size, max_length=max_length,
                    normalize=normalize, progress=progress)
    for key, vector in zip(missing, fresh):
        memo[key] = vector.clone()  # a row of its own, not a view keeping the whole batch alive
    rows = []
    for key in keys:
        memo.move_to_end(key)
        rows.append(memo[key])
    while len(memo) > MEMO_SIZE:
        memo.popitem(last=False)
    return torch.stack(rows) if rows else torch.empty((0, encoder.model.config.hidden_size))


@torch.inference_mode()
def _encode(encoder: LoadedModel, texts: list[str], *, batch_size: int, max_length: int, normalize: bool,
            progress) -> torch.Tensor:
    hidden = encoder.model.config.hidden_size
    result = torch.empty((len(texts), hidden), dtype=torch.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
    tokenizer = encoder.tokenizer
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        # right padding: BERT-style encoders use absolute positions counted from the first token
        enc = tokenizer([texts[i] for i in chunk], padding=True, padding_side="right", truncation=True,
                        max_length=max_length, return_tensors="pt").to(encoder.device)
        states = encoder.model(**enc).last_hidden_state.float()  # [B, T, H]
        mask = enc["attention_mask"].unsqueeze(-1).float()  # [B, T, 1]
        pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # [B, H]
        if normalize:
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        result[chunk] = pooled.cpu()
        if progress is not None:
            progress(len(chunk))
    return result
