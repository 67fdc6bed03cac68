"""The classification reward's example cache, bounded in bytes so a long run's memory stays flat.

Example-first templates keep each training example's key/value states for the whole run (encoded
once, reused by every prompt of every step). On RLPrompt's few-shot data that is a few dozen
entries; on a large training set it would grow with every new example drawn. This cache keeps
the most recently used entries within ``max_bytes`` and drops the least recently used ones, never
one the current call needs; a dropped example is simply encoded again when it is drawn again
(one example per forward, so its states are the same floats as before).
"""

from __future__ import annotations

from typing import Hashable, Sequence

from ..models import LoadedModel
from .prefix_cache import PrefixKVCache

DEFAULT_EXAMPLE_CACHE_BYTES = 2 * 1024 ** 3  # ~1800 SmolLM2-135M examples of 25 tokens in fp32, ~130 for gpt2-xl


class BoundedPrefixKVCache(PrefixKVCache):
    """A :class:`PrefixKVCache` holding at most ``max_bytes`` of states, least recently used dropped first."""

    def __init__(self, lm: LoadedModel, max_bytes: int | None = DEFAULT_EXAMPLE_CACHE_BYTES, encode_batch_size: int = 1):
        super().__init__(lm, max_entries=None, encode_batch_size=encode_batch_size)
        self.max_bytes = max_bytes
        self._sizes: dict[Hashable, int] = {}

    @property
    def bytes(self) -> int:
        return sum(self._sizes.values())

    def clear(self) -> None:
        super().clear()
        self._sizes.clear()

    def add(self, items: dict[Hashable, Sequence[int]]) -> None:
        for key in items:  # mark as recently used: move to the end of the (insertion-ordered) entries
            if key in self._entries:
                self._entries[key] = self._entries.pop(key)
        if self.max_bytes is not None:  # room first, so the old entries and the new ones are never held together
            self._evict(self.max_bytes - self._predicted_bytes(items), keep=items)
        super().add(items)
        for key in items:
            if key not in self._sizes:
                _, layers, hidden = self._entries[key]
                self._sizes[key] = hidden.numel() * hidden.element_size() + sum(
                    k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in layers)
        if self.max_bytes is not None:
            self._evict(self.max_bytes, keep=items)

    def _predicted_bytes(self, items: dict[Hashable, Sequence[int]]) -> int:
        """What the items not cached yet will take, at the cached entries' mean bytes per token (0 when empty)."""
        tokens = sum(self._entries[key][0] for key in self._sizes)
        if not tokens:
            return 0
        return sum(len(ids) for key, ids in items.items() if key not in self._entries) * self.bytes // tokens

    def _evict(self, limit: int, keep) -> None:
        """Drop the least recently used entries, never one in ``keep``, until the cache holds at most ``limit``."""
        total = self.bytes
        for key in list(self._entries):  # oldest first
            if total <= limit:
                break
            if key not in keep:
                del self._entries[key]
                total -= self._sizes.pop(key)
