"""``ContentPreservation``: how much of the input a rewrite keeps.

``metric="cosine"``: cosine similarity of the MiniLM sentence embeddings of input and output (the
role BERTScore plays in RLPrompt); ``metric="bleu"``: sentence BLEU of the output against the
input through sacrebleu, divided by 100. Both in ``[0, 1]`` for sensible text (cosine may dip
below 0); an empty output scores 0.
"""

from __future__ import annotations

from typing import Sequence

import sacrebleu
import torch

from ..models import LoadedModel, load_lm
from ..style.sentence_embeddings import DEFAULT_ENCODER, embed_sentences
from .base import PromptBatch, Reward, RewardError, RewardOutput

METRICS = ("cosine", "bleu")


def sentence_bleu_scores(outputs: Sequence[str], references: Sequence[str | Sequence[str]]) -> torch.Tensor:
    """sacrebleu sentence BLEU of each output against its reference(s), in ``[0, 1]``."""
    scores = []
    for output, refs in zip(outputs, references, strict=True):
        refs = [refs] if isinstance(refs, str) else list(refs)
        scores.append(sacrebleu.sentence_bleu(output, refs).score / 100.0 if output.strip() else 0.0)
    return torch.tensor(scores, dtype=torch.float32)


def cosine_scores(encoder: LoadedModel, sources: Sequence[str], outputs: Sequence[str], batch_size: int = 64) -> torch.Tensor:
    """Cosine similarity ``[N]`` of the sentence embeddings of ``sources[i]`` and ``outputs[i]``; 0 for empty outputs."""
    if len(sources) != len(outputs):
        raise RewardError(f"{len(sources)} inputs but {len(outputs)} outputs")
    if not outputs:
        return torch.zeros(0)
    unique = list(dict.fromkeys([*sources, *outputs]))  # every distinct sentence embedded once
    vectors = embed_sentences(encoder, unique, batch_size=batch_size)  # [U, H], unit rows
    index = {text: i for i, text in enumerate(unique)}
    a = vectors[[index[s] for s in sources]]
    b = vectors[[index[o] for o in outputs]]
    scores = (a * b).sum(-1)
    empty = torch.tensor([not o.strip() for o in outputs])
    return scores.masked_fill(empty, 0.0)


class ContentPreservation(Reward):
    """Content kept from ``batch["input"][i]`` in text ``i`` (the rewrite), by cosine or BLEU."""

    name = "content"

    def __init__(self, metric: str = "cosine", encoder: LoadedModel | str = DEFAULT_ENCODER, batch_size: int = 64):
        if metric not in METRICS:
            raise ValueError(f"unknown content metric {metric!r}; choose one of {list(METRICS)}")
        self.metric = metric
        self.batch_size = batch_size
        self._encoder = encoder

    @property
    def encoder(self) -> LoadedModel:
        if not isinstance(self._encoder, LoadedModel):
            self._encoder = load_lm(self._encoder, role="task", dtype="float32")
        return self._encoder

    def scores(self, sources: Sequence[str], outputs: Sequence[str]) -> torch.Tensor:
        if self.metric == "bleu":
            return sentence_bleu_scores(outputs, sources)
        return cosine_scores(self.encoder, sources, outputs, self.batch_size)

    def __call__(self, prompts: PromptBatch, batch: dict) -> RewardOutput:
        sources = (batch or {}).get("input")
        if sources is None or len(sources) != len(prompts):
            raise RewardError(f"ContentPreservation scores texts against batch['input'] (one input per text); got "
                              f"{len(prompts)} texts and {'no inputs' if sources is None else len(sources)}")
        scores = self.scores(list(sources), list(prompts))
        return RewardOutput(scores, {f"content/{self.metric}": float(scores.mean())})

    def __repr__(self) -> str:
        return f"ContentPreservation({self.metric})"
