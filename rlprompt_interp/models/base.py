"""What every part of model loading shares: a loaded model with its tokenizer, and the error a bad spec raises."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase


class ModelLoadError(RuntimeError):
    """A model spec that names nothing loadable; the message says what to use instead."""


@dataclass
class LoadedModel:
    """A frozen model with the tokenizer that belongs to it."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    spec: str

    @property
    def is_encoder_decoder(self) -> bool:
        return bool(getattr(self.model.config, "is_encoder_decoder", False))

    @property
    def is_masked_lm(self) -> bool:
        """A bidirectional model read at its mask token (RoBERTa, BERT), not at the next token."""
        return _is_masked_lm_class(type(self.model))

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype


@functools.lru_cache(maxsize=None)
def _is_masked_lm_class(model_class: type) -> bool:
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    return model_class.__name__ in MODEL_FOR_MASKED_LM_MAPPING_NAMES.values()
