"""Next-token logits of many (prefix, suffix) pairs, encoding each distinct prefix once.

The classification reward scores N prompts x M examples every step. Where the template puts the
example first, the prefix is the example (encoded once for the whole run) and the suffix is the
prompt; where the prompt comes first, the prefix is the prompt (encoded once per step) and the
suffix is the example. Either way only the suffix tokens of the N*M pairs go through the LM, and
the suffixes of one prefix go as a trie: the 8 prompts a policy samples in a step often begin with the
same words, and a beginning they share is computed once (13% fewer tokens over a run's first 30 steps on
SST-2; the reward 1.35x faster with the smaller key/value copies, 2 cores, fp32).

A pair with an empty suffix (no prompt, at the end of the template) reads the logits after its prefix's
last token from the final hidden state kept with the prefix, so it costs no forward pass of its own.

Positions: prefixes are encoded left-padded with ``position_ids = cumsum(mask) - 1`` and stored
without their padding; a batch re-pads them on the left with masked zeros. A trie is one row of
nodes (right-padded), each at position ``prefix length + depth`` and, through a 4D attention mask,
attending to its prefix and its own ancestors only, so every pair sees exactly the positions and
keys of an unpadded full forward. Only the requested rows of the LM head are read, at the node
where each suffix ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable, Sequence

import torch
from transformers import DynamicCache

from ..models import LoadedModel, cache_argument, returned_cache
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
            layers = [(keys, values) for keys, values, *_ in returned_cache(out)]
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
                             token_ids: Sequence[int], batch_size: int = 128, max_nodes: int = 64) -> torch.Tensor:
    """Logits ``[B, K]`` of ``token_ids`` after ``prefix(prefix_keys[b]) + suffixes[b]`` for each pair b.

    Every prefix must already be in ``cache``; an empty suffix reads the prefix's own next-token logits.
    The suffixes of one prefix go through the LM as a trie (:func:`suffix_tries`): the prompts a policy
    samples in one step often begin alike, and a shared beginning is computed once. At most
    ``batch_size`` pairs go through the LM at once, in rows of at most ``max_nodes`` trie nodes.
    """
    if len(prefix_keys) != len(suffixes):
        raise ValueError(f"{len(prefix_keys)} prefixes but {len(suffixes)} suffixes")
    lm = cache.lm
    empty = [i for i, suffix in enumerate(suffixes) if not len(suffix)]
    logits = torch.empty((len(suffixes), len(token_ids)))
    if empty:
        logits[empty] = head_rows(lm, cache.last_hidden([prefix_keys[i] for i in empty]), token_ids).cpu()
    tries = sorted(suffix_tries(prefix_keys, suffixes, max_nodes), key=lambda trie: len(trie.tokens))
    batches: list[list[SuffixTrie]] = []
    for trie in tries:  # consecutive tries, at most batch_size pairs each (a larger trie goes alone)
        if not batches or sum(len(t.pairs) for t in batches[-1]) + len(trie.pairs) > batch_size:
            batches.append([])
        batches[-1].append(trie)
    for batch in batches:
        out = lm.model.base_model(**trie_inputs(cache, batch))
        rows = torch.tensor([row for row, t in enumerate(batch) for _ in t.pairs], device=lm.device)
        nodes = torch.tensor([node for t in batch for node in t.pairs.values()], device=lm.device)
        logits[[pair for t in batch for pair in t.pairs]] = head_rows(lm, out.last_hidden_state[rows, nodes],
                                                                      token_ids).cpu()
    return logits


@dataclass
class SuffixTrie:
    """Suffixes of one prefix as a tree of tokens: node n is ``tokens[n]`` at depth ``depths[n]`` after
    ``parents[n]`` (-1: right after the prefix); ``pairs`` maps a pair's index to the node its suffix ends on."""

    key: Hashable
    tokens: list[int] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)
    depths: list[int] = field(default_factory=list)
    pairs: dict[int, int] = field(default_factory=dict)
    children: dict[tuple[int, int], int] = field(default_factory=dict)  # (parent, token) -> node

    def new_nodes(self, suffix: Sequence[int]) -> int:
        """How many nodes ``suffix`` would add."""
        node = -1
        for depth, token in enumerate(suffix):
            node = self.children.get((node, int(token)))
            if node is None:
                return len(suffix) - depth
        return 0

    def insert(self, pair: int, suffix: Sequence[int]) -> None:
        node = -1
        for depth, token in enumerate(suffix):
            parent, token = node, int(token)
            node = self.children.get((parent, token))
            if node is None:
                node = self.children[parent, token] = len(self.tokens)
                self.tokens.append(token)
                self.parents.append(parent)
                self.depths.append(depth)
        self.pairs[pair] = node

    def ancestors(self) -> torch.Tensor:
        """``[n, n]`` boolean: node i may attend to node j (j is i or one of its ancestors)."""
        allowed = torch.zeros((len(self.tokens), len(self.tokens)), dtype=torch.bool)
        for node, parent in enumerate(self.parents):  # a parent always comes before its children
            if parent >= 0:
                allowed[node] = allowed[parent]
            allowed[node, node] = True
        return allowed


def suffix_tries(prefix_keys: Sequence[Hashable], suffixes: Sequence[Sequence[int]], max_nodes: int) -> list[SuffixTrie]:
    """The non-empty suffixes grouped into tries, one or more per prefix (a trie of ``max_nodes`` is full;
    sorting each prefix's suffixes first keeps the ones that begin alike in the same trie)."""
    by_prefix: dict[Hashable, list[int]] = {}
    for pair, (key, suffix) in enumerate(zip(prefix_keys, suffixes)):
        if len(suffix):
            by_prefix.setdefault(key, []).append(pair)
    tries = []
    for key, pairs in by_prefix.items():
        trie = SuffixTrie(key)
        for pair in sorted(pairs, key=lambda i: tuple(suffixes[i])):
            if trie.pairs and len(trie.tokens) + trie.new_nodes(suffixes[pair]) > max_nodes:
                tries.append(trie)
                trie = SuffixTrie(key)
            trie.insert(pair, suffixes[pair])
        tries.append(trie)
    return tries


def trie_inputs(cache: PrefixKVCache, tries: Sequence[SuffixTrie]) -> dict:
    """The body's keyword arguments for a batch of tries after their cached prefixes: one row per trie,
    its nodes right-padded, each node at its own depth after its prefix and attending to the prefix and
    its ancestors only (a 4D mask), so every suffix sees exactly what it would in a full forward."""
    lm = cache.lm
    past, prefix_mask, prefix_lengths = cache.batch([trie.key for trie in tries])
    width, prefix_width = max(len(trie.tokens) for trie in tries), prefix_mask.shape[1]
    input_ids = torch.full((len(tries), width), lm.tokenizer.pad_token_id, dtype=torch.long)
    depths = torch.zeros((len(tries), width), dtype=torch.long)
    allowed = torch.zeros((len(tries), width, prefix_width + width), dtype=torch.bool)
    allowed[:, :, :prefix_width] = prefix_mask.bool().cpu()[:, None, :]
    allowed[:, :, prefix_width:] = torch.eye(width, dtype=torch.bool)  # padding nodes see themselves: no NaN
    for row, trie in enumerate(tries):
        size = len(trie.tokens)
        input_ids[row, :size] = torch.tensor(trie.tokens)
        depths[row, :size] = torch.tensor(trie.depths)
        allowed[row, :size, prefix_width:prefix_width + size] = trie.ancestors()
    dtype = lm.model.dtype
    mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min)[:, None]
    return dict(input_ids=input_ids.to(lm.device), attention_mask=mask.to(lm.device),
                position_ids=prefix_lengths[:, None] + depths.to(lm.device), use_cache=True,
                **cache_argument(lm.model.base_model, past))
