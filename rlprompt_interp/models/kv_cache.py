"""The names a model body takes and returns its key/value cache under, which changed in transformers 5.24."""

from __future__ import annotations

import functools

import torch


def cache_argument(model: torch.nn.Module, cache) -> dict:
    """The keyword a model body takes its key/value cache under: ``cache`` from transformers 5.24
    (``past_key_values`` is deprecated there, with a warning per call), ``past_key_values`` before."""
    return {_cache_keyword(type(model)): cache}


@functools.lru_cache(maxsize=None)
def _cache_keyword(model_class: type) -> str:
    import inspect

    return "cache" if "cache" in inspect.signature(model_class.forward).parameters else "past_key_values"


def returned_cache(output):
    """The key/value cache a forward returned: ``output.cache`` from transformers 5.24 (reading
    ``past_key_values`` warns there), ``past_key_values`` before."""
    return output["cache"] if "cache" in output else output.past_key_values
