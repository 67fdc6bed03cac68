"""Faithfulness of a soft prompt to its unembedded text (Towards Interpretable Soft Prompts, §3).

Lower is more faithful for all three differentials:

* distance differential ``Δ_D = 1/L Σ_i min_y D(f_V(y), P̄_i)²`` (per distance D);
* output differential ``Δ_Output = 1/L Σ_t (1/|X| Σ_j (l_jt − l'_jt)²)``: the mean squared
  difference of the output logits with the soft prompt (l) and with its unembedded text (l'),
  over the whole vocabulary X, averaged over output positions t and over the evaluated examples;
  the looser variant is the rate at which the two agree on the top-1 token;
* performance differential ``Δ_L = |acc(f(x | P̄)) − acc(f(f_U(P̄), x))|``.

A prompt made of exact token embeddings (PEZ's projection) has all three equal to zero.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from tqdm.auto import tqdm

from ..evaluation import ClassificationReport, prompt_logits, summarise
from ..models import LoadedModel
from ..prompts import LearnedPrompt
from ..tasks import ClassificationTask
from .errors import MetricInputError
from .unembed import unembed, vocabulary_matrix


def distance_differential(embeddings: torch.Tensor, embedding_matrix: torch.Tensor, metric: str = "euclidean") -> float:
    """``Δ_D = 1/L Σ_i min_y D(E_y, p_i)²`` with D the Euclidean distance or the cosine distance ``1 − cos``."""
    nearest = unembed(embeddings, embedding_matrix, metric=metric, top_k=1).distances()[:, 0]  # [L]
    return float(nearest.pow(2).mean())


def output_differential(soft_logits: torch.Tensor, text_logits: torch.Tensor) -> dict:
    """Mean squared logit difference and top-1 agreement of two sets of output logits.

    Both are ``[N, V]`` (one output position per example) or ``[N, T, V]``. Returns
    ``mean_squared_difference = mean_{n,t} (1/V Σ_j (l_j − l'_j)²)`` and ``top1_agreement``, the
    fraction of (example, position) pairs whose arg-max token is the same.
    """
    if soft_logits.shape != text_logits.shape:
        raise MetricInputError(f"logits to compare must have one shape, got {tuple(soft_logits.shape)} and "
                         f"{tuple(text_logits.shape)}")
    soft, text = soft_logits.float(), text_logits.float()
    return {"mean_squared_difference": float((soft - text).pow(2).mean()),
            "top1_agreement": float((soft.argmax(-1) == text.argmax(-1)).float().mean())}


def performance_differential(soft_accuracy: float, text_accuracy: float) -> float:
    """``Δ_L = |acc_soft − acc_unembedded|``."""
    return abs(soft_accuracy - text_accuracy)


def unembedded_prompt(prompt: LearnedPrompt, lm: LoadedModel, metric: str = "euclidean") -> LearnedPrompt:
    """``f_U(P̄)``: the discrete prompt of the nearest vocabulary token at each position (token ids kept)."""
    if not prompt.is_soft:
        raise MetricInputError("only a learned prompt with embeddings can be unembedded")
    ids = unembed(prompt.embeddings, vocabulary_matrix(lm.model, lm.tokenizer), metric=metric).top1
    return LearnedPrompt(text=lm.tokenizer.decode(ids), token_ids=ids,
                         provenance={**prompt.provenance, "unembedded_with": metric})


def output_vocabulary_size(lm: LoadedModel) -> int:
    """Rows of the LM head (the logits' last dimension)."""
    head = lm.model.get_output_embeddings()
    return head.weight.shape[0] if head is not None else lm.model.config.get_text_config().vocab_size


@dataclass
class FaithfulnessReport:
    """The three differentials of one soft prompt on one split, with the accuracies behind Δ_L."""

    unembed_metric: str
    unembedded_text: str
    unembedded_token_ids: list[int]
    distance_differential: dict[str, float]
    output_differential: float
    top1_agreement: float
    class_agreement: float
    performance_differential: float
    soft: ClassificationReport
    unembedded: ClassificationReport

    def to_dict(self) -> dict:
        return {**asdict(self), "soft": self.soft.to_dict(), "unembedded": self.unembedded.to_dict()}


def faithfulness(task: ClassificationTask, lm: LoadedModel, prompt: LearnedPrompt, *, metric: str = "euclidean",
                 split: str = "test", limit: int | None = None, batch_size: int = 32, chunk: int = 256,
                 progress: bool = False) -> FaithfulnessReport:
    """All three differentials of a soft prompt, from one pass over ``split`` per prompt form.

    Full-vocabulary next-token logits are computed ``chunk`` examples at a time for the soft
    prompt and for ``f_U(P̄)`` (with ``metric``); Δ_Output and top-1 agreement read the whole
    vocabulary, accuracies (and so Δ_L) the verbalizer columns. ``class_agreement`` is the
    fraction of examples whose predicted class is the same both ways.

    ``f_U(P̄)`` fills the same slot as the soft prompt, between the same example tokens: its
    tokens' embeddings ``E[f_U(P̄)]`` are exactly what the LM reads for those token ids. (The
    discrete evaluation of ``evaluate_prompt`` may differ by one space token: it drops the
    template's space before a prompt whose first token carries its own, which a soft prompt
    cannot tell.) So the two forms differ in the prompt only, and a prompt of exact token
    embeddings has all three differentials zero.
    """
    text_prompt = unembedded_prompt(prompt, lm, metric)
    as_tokens = LearnedPrompt(text=text_prompt.text, embeddings=lm.model.get_input_embeddings().weight.detach()[
        text_prompt.token_ids].float())  # [L, d]: what the LM reads for the unembedded token ids
    # a prompt that already is its tokens' embeddings (a discrete prompt) gives the same inputs both ways
    same_inputs = torch.equal(as_tokens.embeddings, prompt.embeddings.to(as_tokens.embeddings))
    examples = task.load_split(split, limit=limit)
    verbalizers = task.verbalizer_ids(lm.tokenizer)
    vocab = list(range(output_vocabulary_size(lm)))
    squared, top1, predictions = 0.0, 0, {"soft": [], "text": []}
    passes = 1 if same_inputs else 2
    bar = tqdm(total=passes * len(examples), desc=f"faithfulness {task.name}/{split}", unit="ex",
               disable=not progress)
    for start in range(0, len(examples), chunk):
        part = examples.select(range(start, min(start + chunk, len(examples))))
        soft = prompt_logits(task, lm, prompt, part, vocab, batch_size, progress=bar.update)  # [n, V]
        text = soft if same_inputs else prompt_logits(task, lm, as_tokens, part, vocab, batch_size,
                                                      progress=bar.update)  # [n, V]
        stats = output_differential(soft, text)
        squared += stats["mean_squared_difference"] * len(part)
        top1 += stats["top1_agreement"] * len(part)
        predictions["soft"] += soft[:, verbalizers].argmax(-1).tolist()
        predictions["text"] += text[:, verbalizers].argmax(-1).tolist()
    bar.close()
    n = len(examples)
    subset = task.subset_note(split, limit)
    soft_report = summarise(task, split, prompt.text, predictions["soft"], examples["label"], subset, lm=lm)
    text_report = summarise(task, split, text_prompt.text, predictions["text"], examples["label"], subset, lm=lm)
    matrix = vocabulary_matrix(lm.model, lm.tokenizer)
    return FaithfulnessReport(
        unembed_metric=metric, unembedded_text=text_prompt.text, unembedded_token_ids=text_prompt.token_ids,
        distance_differential={d: distance_differential(prompt.embeddings, matrix, d) for d in ("euclidean", "cosine")},
        output_differential=squared / n, top1_agreement=round(top1) / n,
        class_agreement=sum(a == b for a, b in zip(predictions["soft"], predictions["text"])) / n,
        performance_differential=performance_differential(soft_report.accuracy, text_report.accuracy),
        soft=soft_report, unembedded=text_report)
