"""Unembedding: the nearest vocabulary tokens of continuous prompt vectors.

``f_U(p) = argmin_y D(f_V(y), p)`` (Towards Interpretable Soft Prompts, §3) maps each prompt
position to the vocabulary token whose embedding is closest. The vocabulary is scanned in chunks
with a running top-k, so gpt2-xl's 50257 x 1600 table never needs a full ``[L, V]`` distance
matrix in float32 next to a second copy of itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import MetricInputError

METRICS = ("euclidean", "cosine", "dot")


@dataclass
class Unembedding:
    """The ``top_k`` nearest tokens of each of ``L`` positions, best first.

    ``token_ids`` is ``[L, k]`` (long); ``scores`` is ``[L, k]``: the Euclidean distance
    (ascending) for ``euclidean``, the cosine similarity (descending) for ``cosine``, the dot
    product (descending) for ``dot``.
    """

    token_ids: torch.Tensor
    scores: torch.Tensor
    metric: str

    @property
    def top1(self) -> list[int]:
        """``f_U``: the single nearest token per position."""
        return self.token_ids[:, 0].tolist()

    def distances(self) -> torch.Tensor:
        """``[L, k]`` distances ``D``: Euclidean distance, or cosine distance ``1 - cos``."""
        if self.metric == "euclidean":
            return self.scores
        if self.metric == "cosine":
            return 1.0 - self.scores
        raise MetricInputError("the dot product is a similarity, not a distance; "
                               "unembed with metric='euclidean' or 'cosine'")

    def tokens(self, tokenizer) -> list[list[str]]:
        """Each position's nearest tokens as strings (one token decoded at a time)."""
        return [[tokenizer.decode([token]) for token in row] for row in self.token_ids.tolist()]


def vocabulary_matrix(model, tokenizer=None) -> torch.Tensor:
    """The input embedding table ``[V, d]`` of ``model``, cut to the tokenizer's vocabulary.

    Some models pad their table beyond the tokenizer (T5: 32128 rows for 32100 tokens); the
    padding rows decode to nothing, so they are never a valid readout.
    """
    weight = model.get_input_embeddings().weight.detach()
    if tokenizer is not None and len(tokenizer) < weight.shape[0]:
        weight = weight[:len(tokenizer)]
    return weight


@torch.no_grad()
def unembed(embeddings: torch.Tensor, embedding_matrix: torch.Tensor, metric: str = "euclidean", top_k: int = 1,
            chunk_size: int = 8192) -> Unembedding:
    """Nearest vocabulary rows of each prompt vector.

    ``embeddings`` is ``[L, d]``; ``embedding_matrix`` is ``[V, d]``. Scores per (position i,
    token y): Euclidean ``||E_y - p_i||_2``, cosine ``E_y.p_i / (||E_y|| ||p_i||)``, dot ``E_y.p_i``.
    Euclidean candidates are ranked with ``||E_y||^2 - 2 E_y.p_i`` (a matmul per chunk) and
    their distances then recomputed exactly as ``||E_y - p_i||``, so a prompt that is exactly a
    token's embedding reads back distance 0, not the ~1e-3 rounding of the expanded formula.
    """
    if metric not in METRICS:
        raise MetricInputError(f"unknown unembedding metric {metric!r}; choose one of {', '.join(METRICS)}")
    if embeddings.dim() != 2 or embedding_matrix.dim() != 2 or embeddings.shape[1] != embedding_matrix.shape[1]:
        raise MetricInputError(f"need prompt embeddings [L, d] and an embedding matrix [V, d] with the same d; got "
                         f"{tuple(embeddings.shape)} and {tuple(embedding_matrix.shape)} (was the prompt learned "
                         "for a different model?)")
    vocab = embedding_matrix.shape[0]
    if not 1 <= top_k <= vocab:
        raise MetricInputError(f"top_k must be between 1 and the vocabulary size {vocab}, got {top_k}")
    device = embedding_matrix.device
    prompts = embeddings.detach().to(device=device, dtype=torch.float32)  # [L, d]
    if metric == "cosine":
        prompts = torch.nn.functional.normalize(prompts, dim=-1)
    largest = metric != "euclidean"
    best_scores = prompts.new_empty((prompts.shape[0], 0))
    best_ids = torch.empty((prompts.shape[0], 0), dtype=torch.long, device=device)
    for start in range(0, vocab, chunk_size):
        rows = embedding_matrix[start:start + chunk_size].to(torch.float32)  # [c, d]
        if metric == "cosine":
            scores = prompts @ torch.nn.functional.normalize(rows, dim=-1).T  # [L, c]
        elif metric == "dot":
            scores = prompts @ rows.T
        else:  # ranking key only: ||E_y||^2 - 2 E_y.p (||p||^2 is the same for every y)
            scores = rows.pow(2).sum(-1)[None, :] - 2 * prompts @ rows.T
        ids = torch.arange(start, start + rows.shape[0], device=device).expand_as(scores)
        merged_scores, merged_ids = torch.cat([best_scores, scores], 1), torch.cat([best_ids, ids], 1)
        keep = merged_scores.topk(min(top_k, merged_scores.shape[1]), dim=1, largest=largest).indices
        best_scores, best_ids = merged_scores.gather(1, keep), merged_ids.gather(1, keep)
    if metric == "euclidean":
        candidates = embedding_matrix[best_ids].to(torch.float32)  # [L, k, d]
        best_scores = (candidates - prompts[:, None, :]).norm(dim=-1)
        best_scores, order = best_scores.sort(dim=1)
        best_ids = best_ids.gather(1, order)
    return Unembedding(token_ids=best_ids.cpu(), scores=best_scores.cpu(), metric=metric)
