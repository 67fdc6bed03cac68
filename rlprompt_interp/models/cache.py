"""``load_lm``: every load goes through one cache keyed by (spec, device, dtype), so a policy, a task LM and a
perplexity scorer that name the same model share one copy of its weights."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .base import LoadedModel, ModelLoadError
from .devices import default_device
from .dtypes import resolve_dtype
from .embedded import EMBEDDED_MODELS
from .hub import OFFLINE_DEFAULT, resolve_spec
from .pretrained import load_pretrained
from .random_models import RANDOM_PREFIX, random_shaped_model

_CACHE: dict[tuple[str, str, torch.dtype], LoadedModel] = {}


def load_lm(spec: str | None = "auto", *, role: str = "task", device: str | torch.device | None = None,
            dtype: str | torch.dtype | None = "auto") -> LoadedModel:
    """Load (or fetch from the cache) a frozen model in eval mode with its tokenizer.

    ``spec`` is a hub id, a local folder, an embedded name (see the module docstring) or
    ``auto`` (the paper model for ``role`` online, ``smollm2-135m`` offline).
    """
    spec = resolve_spec(spec, role)
    device = torch.device(device) if device is not None else default_device()
    torch_dtype = resolve_dtype(dtype, device)
    key = (spec, str(device), torch_dtype)
    if key not in _CACHE:
        model, tokenizer = _load_uncached(spec, torch_dtype)
        model.to(device).eval().requires_grad_(False)
        _prepare_tokenizer(tokenizer)
        _CACHE[key] = LoadedModel(model=model, tokenizer=tokenizer, spec=spec)
    return _CACHE[key]


def clear_model_cache() -> None:
    """Forget every loaded model; their memory goes back once nothing else holds them (a trainer's
    reference cycles included, hence the collection)."""
    import gc

    _CACHE.clear()
    gc.collect()


def _prepare_tokenizer(tokenizer: PreTrainedTokenizerBase) -> None:
    """Left padding with a pad token, which batched next-token scoring needs."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token


def _load_uncached(spec: str, dtype: torch.dtype) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    if spec in EMBEDDED_MODELS:
        return EMBEDDED_MODELS[spec](dtype)
    if spec.startswith(RANDOM_PREFIX):
        return random_shaped_model(spec[len(RANDOM_PREFIX):], dtype)
    if Path(spec).expanduser().is_dir():
        return load_pretrained(str(Path(spec).expanduser()), dtype)
    if Path(spec).expanduser().exists():
        raise ModelLoadError(f"model path {spec!r} is a file; pass the folder that holds config.json")
    try:
        return load_pretrained(spec, dtype)
    except (OSError, ValueError) as error:
        embedded = ", ".join(sorted(EMBEDDED_MODELS))
        raise ModelLoadError(
            f"could not load model {spec!r} from the Hugging Face hub or a local folder ({error.__class__.__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}). If this machine is offline, use the embedded "
            f"default --model {OFFLINE_DEFAULT} (embedded models: {embedded}), or pass a local folder."
        ) from error
