"""Scrutability: the perplexity of a prompt's text under a scorer LM (lower = more readable).

``PPL(P) = exp(1/L Σ_i −log p_φ(P_i | P_<i))`` (Towards Interpretable Soft Prompts, §3), with
the paper's GPT2-XL as scorer online and the embedded SmolLM2-135M offline. This module only
calls :mod:`rlprompt_interp.perplexity`, the implementation the perplexity reward also uses, so
the metric and the reward cannot drift apart.
"""

from __future__ import annotations

from typing import Sequence

import datasets
import evaluate

from ..models import EVAL_DTYPE, LoadedModel, load_lm
from ..perplexity import perplexity


def scrutability(scorer: LoadedModel, texts: Sequence[str], batch_size: int = 32) -> list[float]:
    """Perplexity of each text under ``scorer`` (texts are tokenised by the scorer's tokenizer)."""
    return perplexity(scorer, texts, batch_size).tolist()


class Scrutability(evaluate.Metric):
    """``evaluate`` front end: ``Scrutability().compute(predictions=texts, scorer="smollm2-135m")``.

    Returns ``perplexities`` (one per text) and ``mean_perplexity``. ``scorer`` is any spec
    ``load_lm`` accepts (``auto``: gpt2-xl online, smollm2-135m offline) or a ``LoadedModel``.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("keep_in_memory", True)  # no arrow cache files for a handful of strings
        super().__init__(**kwargs)

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=__doc__, citation="Patel et al. 2025, Towards Interpretable Soft Prompts",
            inputs_description="predictions: list of prompt texts; scorer: model spec or LoadedModel; batch_size",
            features=datasets.Features({"predictions": datasets.Value("string")}))

    def _compute(self, predictions, scorer="auto", batch_size: int = 32, dtype=EVAL_DTYPE):
        lm = scorer if isinstance(scorer, LoadedModel) else load_lm(scorer, role="scorer", dtype=dtype)
        values = scrutability(lm, predictions, batch_size)
        return {"perplexities": values, "mean_perplexity": sum(values) / len(values), "scorer": lm.spec}
