"""Randomly initialised models of the paper models' shapes (``random:gpt2-xl``; ``random:roberta-large``, a
masked LM): speed and memory at the paper's sizes without the hub."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

from .base import ModelLoadError
from .embedded import load_smollm2

RANDOM_PREFIX = "random:"
# GPT-2 family shapes (layers, width, heads): the paper's policy/task LM and scorer among them
GPT2_SHAPES = {"distilgpt2": (6, 768, 12), "gpt2": (12, 768, 12), "gpt2-medium": (24, 1024, 16),
               "gpt2-large": (36, 1280, 20), "gpt2-xl": (48, 1600, 25)}
# RoBERTa shapes (layers, width, heads; feed-forward 4x width): RLPrompt's masked task LMs
ROBERTA_SHAPES = {"distilroberta-base": (6, 768, 12), "roberta-base": (12, 768, 12), "roberta-large": (24, 1024, 16)}


def random_shaped_model(shape: str, dtype: torch.dtype = torch.float32, seed: int = 0):
    """A randomly initialised GPT-2 of a paper model's shape with the embedded SmolLM2 tokenizer,
    its parameters created in ``dtype`` (no fp32 copy on the way: gpt2-xl is 3.1 GB in bf16)."""
    from transformers import GPT2Config

    if shape in ROBERTA_SHAPES:
        return random_roberta(shape, dtype, seed)
    if shape not in GPT2_SHAPES:
        raise ModelLoadError(f"unknown model shape {shape!r} in {RANDOM_PREFIX}{shape}; "
                             f"choose one of {sorted([*GPT2_SHAPES, *ROBERTA_SHAPES])}")
    _, tokenizer = load_smollm2(dtype, tokenizer_only=True)
    layers, width, heads = GPT2_SHAPES[shape]
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=1024, n_embd=width, n_layer=layers, n_head=heads,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config, dtype=dtype), tokenizer


def random_roberta(shape: str, dtype: torch.dtype = torch.float32, seed: int = 0):
    """A randomly initialised RoBERTa masked LM of a paper model's shape; its tokenizer is SmolLM2's with
    ``<mask>`` (taking the space before it, as RoBERTa's does) and RoBERTa's ``<s> ... </s>`` around every text."""
    from transformers import RobertaConfig

    from ..tiny import with_mask_token

    _, tokenizer = load_smollm2(dtype, tokenizer_only=True)
    tokenizer = with_mask_token(tokenizer)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # a low id: RoBERTa's positions count up from the pad id
    layers, width, heads = ROBERTA_SHAPES[shape]
    pad = tokenizer.pad_token_id
    config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=width, num_hidden_layers=layers,
                           num_attention_heads=heads, intermediate_size=4 * width, max_position_embeddings=514,
                           type_vocab_size=1, pad_token_id=pad, bos_token_id=tokenizer.cls_token_id,
                           eos_token_id=tokenizer.sep_token_id)
    torch.manual_seed(seed)
    return AutoModelForMaskedLM.from_config(config, dtype=dtype), tokenizer
