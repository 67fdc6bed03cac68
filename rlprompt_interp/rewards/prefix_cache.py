"""Next-token logits of many (prefix, suffix) pairs, encoding each distinct prefix once.

The classification reward scores N prompts x M examples every step. Where the template puts the
example first, the prefix is the example (encoded once for the whole run) and the suffix is the
prompt; where the prompt comes first, the prefix is the prompt (encoded once per step) and the
suffix is the example. Either way only the suffix tokens of the N*M pairs go through the LM.

A pair with an empty suffix (no prompt, at the end of the template) reads the logits after its prefix's
last token from the final hidden state kept with the prefix, so it costs no forward pass of its own.

Positions: prefixes are encoded left-padded with ``position_ids = cumsum(mask) - 1`` and stored
without their padding; a batch re-pads them on the left with masked zeros, and the suffix tokens
(right-padded) continue each row's own numbering, so every pair sees exactly the positions and
keys of an unpadded full forward. Only the requested rows of the LM head are read, at each row's
last real position.
"""

from __future__ import annotations

from typing import Hashable, Sequence

import torch
from transformers import DynamicCache

from ..models import LoadedModel, cache_argument
from ..scoring import left_pad


class PrefixKVCache:
    """Per-prefix key/value states of a frozen causal LM, keyed by anything hashable.

    Stored tensors are never handed to the model: every batch builds a fresh ``DynamicCache`` from
    indexed copies, because a forward pass appends to the cache it is given. Each entry also keeps the
    final hidden state of its last token (``last_hidden``), the next-token logits of the prefix itself.
    """

    def __init__(self, lm: LoadedModel, max_entries: int | None = None, encode_batch_size: int = 32):
        if lm.is_encoder_decoder:
            raise ValueError(f"prefix caching needs a causal LM; {lm.spec!r} is an encoder-decoder")
        self.lm = lm
        self.max_entries = max_entries
        self.encode_batch_size = encode_batch_size
        self._entries: dict[Hashable, tuple[int, list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def clear(self) -> None:
        self._entries.clear()

    @torch.inference_mode()
    def add(self, items: dict[Hashable, Sequence[int]]) -> None:
        """Encode the prefixes not cached yet; each entry keeps ``[heads, t_i, head_dim]`` per layer and the
        last token's final hidden state ``[d]``."""
        missing = [(key, list(ids)) for key, ids in items.items() if key not in self._entries]
        if self.max_entries is not None and len(self._entries) + len(missing) > self.max_entries:
            self._entries.clear()  # a per-step cache (prompt-first templates), or a bounded one: start over
            missing = [(key, list(ids)) for key, ids in items.items()]
        if self.encode_batch_size > 1:
            missing.sort(key=lambda item: len(item[1]))  # batches of similar length: little padding
        for start in range(0, len(missing), self.encode_batch_size):
            chunk = missing[start:start + self.encode_batch_size]
            input_ids, mask, positions = left_pad([ids for _, ids in chunk], self.lm.tokenizer.pad_token_id,
                                                  self.lm.device)
            out = self.lm.model.base_model(input_ids=input_ids, attention_mask=mask, position_ids=positions,
                                           use_cache=True)
            layers = [(keys, values) for keys, values, *_ in out.past_key_values]
            width = input_ids.shape[1]
            for row, (key, ids) in enumerate(chunk):
                start_col = width - len(ids)
                self._entries[key] = (len(ids), [(k[row, :, start_col:].clone(), v[row, :, start_col:].clone())
                                                 for k, v in layers], out.last_hidden_state[row, -1].clone())

    def last_hidden(self, keys: Sequence[Hashable]) -> torch.Tensor:
        """Final hidden states ``[B, d]`` of each prefix's last token (left padding: the last column is real)."""
        return torch.stack([self._entries[key][2] for key in keys])

    def batch(self, keys: Sequence[Hashable]):
        """``(DynamicCache, attention_mask [B, T], lengths [B])`` for these prefixes, left-padded."""
        distinct = list(dict.fromkeys(keys))
        index = {key: i for i, key in enumerate(distinct)}
        lengths = torch.tensor([self._entries[key][0] for key in distinct])
        width = int(lengths.max())
        num_layers = len(self._entries[distinct[0]][1])
        rows = torch.tensor([index[key] for key in keys], device=self.lm.device)
        layers = []
        for layer in range(num_layers):
            k0, v0 = self._entries[distinct[0]][1][layer]
            keys_t = k0.new_zeros((len(distinct), k0.shape[0], width, k0.shape[-1]))
            values_t = v0.new_zeros((len(distinct), v0.shape[0], width, v0.shape[-1]))
            for i, key in enumerate(distinct):
                k, v = self._entries[key][1][layer]
                keys_t[i, :, width - k.shape[1]:] = k
                values_t[i, :, width - v.shape[1]:] = v
            layers.append((keys_t.index_select(0, rows), values_t.index_select(0, rows)))
        mask = (torch.arange(width)[None, :] >= (width - lengths)[:, None]).long().to(self.lm.device)
        cache = DynamicCache(ddp_cache_data=layers, config=self.lm.model.config)
        return cache, mask.index_select(0, rows), lengths.to(self.lm.device).index_select(0, rows)


def head_rows(lm: LoadedModel, hidden: torch.Tensor, token_ids: Sequence[int]) -> torch.Tensor:
    """Logits ``[B, K]`` of ``token_ids`` from final hidden states ``[B, d]``: only K rows of the head."""
    head = lm.model.get_output_embeddings()
    ids = torch.as_tensor(list(token_ids), device=hidden.device)
    logits = hidden @ head.weight.index_select(0, ids).T
    if getattr(head, "bias", None) is not None:
        logits = logits + head.bias.index_select(0, ids)
    softcap = getattr(lm.model.config, "final_logit_softcapping", None)
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    return logits.float()


@torch.inference_mode()
def cached_next_token_logits(cache: PrefixKVCache, prefix_keys: Sequence[Hashable], suffixes: Sequence[Sequence[int]],
                             token_ids: Sequence[int], batch_size: int = 128) -> torch.Tensor:
    """Logits ``[B, K]`` of ``token_ids`` after ``prefix(prefix_keys[b]) + suffixes[b]`` for each pair b.

    Every prefix must already be in ``cache``; an empty suffix reads the prefix's own next-token logits.
    """
    if len(prefix_keys) != len(suffixes):
        raise ValueError(f"{len(prefix_keys)} prefixes but {len(suffixes)} suffixes")
    lm = cache.lm
    empty = [i for i, suffix in enumerate(suffixes) if not len(suffix)]
    rest = [i for i, suffix in enumerate(suffixes) if len(suffix)]
    logits = torch.empty((len(suffixes), len(token_ids)))
    if empty:
        logits[empty] = head_rows(lm, cache.last_hidden([prefix_keys[i] for i in empty]), token_ids).cpu()
    for start in range(0, len(rest), batch_size):
        rows = rest[start:start + batch_size]
        inputs, last = suffix_inputs(cache, [prefix_keys[i] for i in rows], [suffixes[i] for i in rows])
        out = lm.model.base_model(**inputs)
        hidden = out.last_hidden_state[torch.arange(len(last), device=lm.device), last]  # [B, d]
        logits[rows] = head_rows(lm, hidden, token_ids).cpu()
    return logits


def suffix_inputs(cache: PrefixKVCache, prefix_keys: Sequence[Hashable],
                  suffixes: Sequence[Sequence[int]]) -> tuple[dict, torch.Tensor]:
    """The body's keyword arguments for one batch of ``suffixes`` after the cached prefixes, and
    the index of each row's last suffix token ``[B]``."""
    lm = cache.lm
    past, prefix_mask, prefix_lengths = cache.batch(prefix_keys)
    width = max(len(s) for s in suffixes)
    input_ids = torch.full((len(suffixes), width), lm.tokenizer.pad_token_id, dtype=torch.long)
    suffix_mask = torch.zeros((len(suffixes), width), dtype=torch.long)
    for row, ids in enumerate(suffixes):  # right padding: real suffix tokens never see the pads
        input_ids[row, :len(ids)] = torch.as_tensor(list(ids))
        suffix_mask[row, :len(ids)] = 1
    input_ids, suffix_mask = input_ids.to(lm.device), suffix_mask.to(lm.device)
    positions = prefix_lengths[:, None] + torch.arange(width, device=lm.device)[None, :]
    inputs = dict(input_ids=input_ids, attention_mask=torch.cat([prefix_mask, suffix_mask], dim=1),
                  position_ids=positions, use_cache=True, **cache_argument(lm.model.base_model, past))
    return inputs, suffix_mask.sum(-1) - 1
