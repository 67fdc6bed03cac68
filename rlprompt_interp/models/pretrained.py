"""Weights from a folder or the hub, loaded in the wanted dtype without passing whole through memory in another."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import (AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM, AutoModelForSeq2SeqLM, AutoTokenizer,
                          PreTrainedModel, PreTrainedTokenizerBase)


def load_pretrained(path: str, dtype: torch.dtype, **kwargs) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    config = AutoConfig.from_pretrained(path, trust_remote_code=False, **kwargs)
    seq2seq = getattr(config, "is_encoder_decoder", False)
    masked = not seq2seq and is_masked_lm_config(config)
    auto_class = AutoModelForSeq2SeqLM if seq2seq else AutoModelForMaskedLM if masked else AutoModelForCausalLM
    files = None if kwargs else safetensors_files(path)
    if files and stored_dtype(files[0]) != dtype:
        from transformers import MODEL_FOR_CAUSAL_LM_MAPPING, MODEL_FOR_MASKED_LM_MAPPING, MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING

        mapping = (MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING if seq2seq else MODEL_FOR_MASKED_LM_MAPPING if masked
                   else MODEL_FOR_CAUSAL_LM_MAPPING)
        model_class = mapping[type(config)]
        model = model_class.from_pretrained(None, config=config, state_dict=state_dict_in(files, dtype), dtype=dtype)
    else:  # stored in the target dtype: transformers maps the file and copies nothing
        model = auto_class.from_pretrained(path, dtype=dtype, trust_remote_code=False, use_safetensors=None, **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False, **kwargs)
    return model, tokenizer


def is_masked_lm_config(config) -> bool:
    """Whether a checkpoint is a masked LM: its recorded architecture says so (roberta-large: RobertaForMaskedLM;
    RoBERTa also has a causal class, so the model type alone does not tell), or its type has no causal class."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_FOR_MASKED_LM_MAPPING_NAMES

    architectures = getattr(config, "architectures", None) or []
    if architectures:
        return any(name.endswith("ForMaskedLM") for name in architectures)
    return config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES


def safetensors_files(path: str) -> list[str] | None:
    """The safetensors weight files of a local folder or hub repository (one, or the shards its index
    names), or None when it has none (``from_pretrained`` then finds what there is)."""
    from transformers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME, cached_file

    def find(name: str) -> str | None:
        try:
            return cached_file(path, name, _raise_exceptions_for_missing_entries=False)
        except OSError:
            return None

    if single := find(SAFE_WEIGHTS_NAME):
        return [single]
    if index := find(SAFE_WEIGHTS_INDEX_NAME):
        shards = sorted(set(json.loads(Path(index).read_text())["weight_map"].values()))
        files = [find(shard) for shard in shards]
        return files if all(files) else None
    return None


_SAFETENSORS_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}


def stored_dtype(file: str) -> torch.dtype | None:
    """The dtype of the first floating-point tensor of a safetensors file, read from its header."""
    from safetensors import safe_open

    with safe_open(file, framework="pt") as handle:
        for key in handle.keys():
            stored = _SAFETENSORS_DTYPES.get(handle.get_slice(key).get_dtype())
            if stored is not None:
                return stored
    return None


def state_dict_in(files: list[str], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Every tensor of ``files``, its floating-point ones cast to ``dtype``, one tensor at a time.

    A checkpoint stored in fp32 and wanted in bf16 would otherwise pass whole through memory: the
    file's pages stay resident while it is mapped, so gpt2-xl (5.8 GB in fp32) peaked at 9.7 GB to
    end as a 3.1 GB bf16 model. Opening the file anew for each tensor unmaps what was read, so the
    peak is the model in ``dtype`` plus one fp32 tensor (3.7 GB for gpt2-xl).
    """
    from safetensors import safe_open

    state = {}
    for file in files:
        with safe_open(file, framework="pt") as handle:
            keys = list(handle.keys())
        for key in keys:
            with safe_open(file, framework="pt") as handle:
                tensor = handle.get_tensor(key)
            state[key] = tensor.to(dtype) if tensor.is_floating_point() else tensor
    return state
