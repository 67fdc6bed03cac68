"""Perplexity of prompt texts under a scorer LM: the one implementation behind the perplexity
reward and the scrutability metric.

``PPL(P) = exp(1/L * sum_i -log p(P_i | BOS, P_<i))``. The first token is scored too: every text
is conditioned on the scorer's BOS token (its EOS token when it has no BOS, which is GPT-2's
``<|endoftext|>``), so a prompt of L tokens contributes L terms. Texts are tokenised by the
scorer's own tokenizer without special tokens, so any scorer works with any policy.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .models import LoadedModel
from .scoring import left_pad


def start_token_id(lm: LoadedModel) -> int:
    tokenizer = lm.tokenizer
    token = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if token is None:
        raise ValueError(f"scorer {lm.spec!r} has neither a BOS nor an EOS token to condition the first token on")
    return token


@torch.inference_mode()
def sequence_nll(lm: LoadedModel, sequences: Sequence[Sequence[int]]) -> list[torch.Tensor]:
    """Per-token negative log-likelihoods (nats) of each token sequence, each given BOS first."""
    if lm.is_encoder_decoder:
        raise ValueError(f"perplexity needs a causal scorer LM; {lm.spec!r} is an encoder-decoder")
    start = start_token_id(lm)
    if any(len(seq) == 0 for seq in sequences):
        raise ValueError("cannot compute the perplexity of an empty prompt")
    inputs = [[start, *seq] for seq in sequences]
    input_ids, attention_mask, position_ids = left_pad(inputs, lm.tokenizer.pad_token_id, lm.device)
    logits = lm.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                      use_cache=False).logits.float()
    log_probs = torch.log_softmax(logits[:, :-1], dim=-1)
    token_log_probs = log_probs.gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    return [-token_log_probs[row, token_log_probs.shape[1] - len(seq):].cpu() for row, seq in enumerate(sequences)]


def log_perplexity(lm: LoadedModel, texts: Sequence[str], batch_size: int = 32) -> torch.Tensor:
    """Mean per-token NLL of each text, shape ``[len(texts)]``; ``exp`` of it is the perplexity."""
    sequences = lm.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    empty = [text for text, seq in zip(texts, sequences) if len(seq) == 0]
    if empty:
        raise ValueError(f"cannot compute the perplexity of an empty prompt text: {empty[:3]}")
    result = []
    for start in range(0, len(sequences), batch_size):
        result += [nll.mean() for nll in sequence_nll(lm, sequences[start:start + batch_size])]
    return torch.stack(result)


def perplexity(lm: LoadedModel, texts: Sequence[str], batch_size: int = 32) -> torch.Tensor:
    """Perplexity of each text under ``lm``, shape ``[len(texts)]``."""
    return log_perplexity(lm, texts, batch_size).exp()
