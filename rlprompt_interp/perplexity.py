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
def check_causal_scorer(lm: LoadedModel) -> None:
    """Perplexity is a left-to-right likelihood: a ``ValueError`` naming an encoder-decoder or masked scorer."""
    if lm.is_encoder_decoder or lm.is_masked_lm:
        raise ValueError(f"perplexity needs a causal scorer LM; {lm.spec!r} is "
                         f"{'an encoder-decoder' if lm.is_encoder_decoder else 'a masked LM'}")


def sequence_nll(lm: LoadedModel, sequences: Sequence[Sequence[int]]) -> list[torch.Tensor]:
    """Per-token negative log-likelihoods (nats) of each token sequence, each given BOS first."""
    check_causal_scorer(lm)
    start = start_token_id(lm)
    if any(len(seq) == 0 for seq in sequences):
        raise ValueError("cannot compute the perplexity of an empty prompt")
    inputs = [[start, *seq] for seq in sequences]
    input_ids, attention_mask, position_ids = left_pad(inputs, lm.tokenizer.pad_token_id, lm.device)
    logits = lm.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                      use_cache=False).logits
    nll = token_nll(logits[:, :-1], input_ids[:, 1:])  # position t predicts token t + 1
    return [nll[row, nll.shape[1] - len(seq):].cpu() for row, seq in enumerate(sequences)]


def token_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """NLL ``[B, T]`` of ``targets`` ``[B, T]`` under aligned ``logits`` ``[B, T, V]``."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    return -log_probs.gather(-1, targets[..., None]).squeeze(-1)


def embedded_nll(lm: LoadedModel, token_ids: Sequence[int] | torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
    """Differentiable per-token NLL ``[L]`` of ``token_ids`` fed to the scorer as ``embeddings`` ``[L, d]``.

    The same quantity as ``sequence_nll`` (BOS first, every token scored) when ``embeddings`` are
    the scorer's own embeddings of ``token_ids``; gradients flow into ``embeddings`` through the
    context they give later tokens. This is what PEZ with a perplexity penalty differentiates.
    """
    check_causal_scorer(lm)
    ids = torch.as_tensor(token_ids, dtype=torch.long, device=lm.device).reshape(-1)
    if ids.numel() == 0 or embeddings.shape[0] != ids.numel():
        raise ValueError(
            f"need one embedding per token: {ids.numel()} tokens, embeddings of shape {tuple(embeddings.shape)}")
    table = lm.model.get_input_embeddings()
    start = torch.tensor([start_token_id(lm)], device=lm.device)
    # [1, L, d]: BOS and every token but the last; the last is only ever predicted
    inputs = torch.cat([table(start), embeddings[:-1].to(device=lm.device, dtype=table.weight.dtype)])[None]
    logits = lm.model(inputs_embeds=inputs, use_cache=False).logits  # [1, L, V]
    return token_nll(logits, ids[None])[0]


def log_perplexity(lm: LoadedModel, texts: Sequence[str], batch_size: int = 32) -> torch.Tensor:
    """Mean per-token NLL of each text, shape ``[len(texts)]``; ``exp`` of it is the perplexity.
    A text given several times (a settled policy's prompts) is scored once."""
    texts = list(texts)
    distinct = list(dict.fromkeys(texts))
    if len(distinct) < len(texts):
        position = {text: i for i, text in enumerate(distinct)}
        return log_perplexity(lm, distinct, batch_size)[[position[text] for text in texts]]
    sequences = lm.tokenizer(texts, add_special_tokens=False)["input_ids"]
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


def prompt_perplexity(scorer: LoadedModel | None, text: str) -> float | None:
    """What a record keeps as a prompt's perplexity: ``text``'s under ``scorer``, None without a scorer or for an
    empty text (a blank prompt has none)."""
    return float(perplexity(scorer, [text])[0]) if scorer is not None and text.strip() else None
