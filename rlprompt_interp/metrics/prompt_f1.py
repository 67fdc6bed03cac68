"""Prompt F1 (Prompt Waywardness, Eq. 8): word-overlap F1 between a projected prompt and its target.

Tokenisation rules (those of the SQuAD F1 the paper cites, plus its lemmatisation):

1. lower-case the text;
2. delete punctuation characters (ASCII ``string.punctuation`` and every Unicode punctuation
   character): they are removed, not replaced by spaces, so ``min_val`` becomes ``minval`` and
   ``std::max(min_val,`` one word ``stdmaxminval``;
3. drop the articles ``a``, ``an``, ``the`` as whole words;
4. split on white space;
5. lemmatise each word with ``simplemma`` (English by default): ``combining`` -> ``combine``.

``F1 = 2PR / (P + R)`` with ``P = common / |prediction words|`` and ``R = common / |reference
words|``, where ``common`` counts words with multiplicity (a multiset intersection). Two texts
with no words left score 1 if both are empty, else 0. With these rules the paper's Table 3
figures come out exactly: "... the given Fact 1 and Fact 2." against "... the given Fact 1. Fact
2." is 2·13/(13+14) = 96.3%.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from functools import lru_cache
from typing import Sequence

import datasets
import evaluate

ARTICLES = frozenset({"a", "an", "the"})


def _is_punctuation(char: str) -> bool:
    return char in string.punctuation or unicodedata.category(char).startswith("P")


@lru_cache(maxsize=65536)
def lemma(word: str, lang: str = "en") -> str:
    import simplemma

    return simplemma.lemmatize(word, lang=lang).lower()


def normalize_words(text: str, lang: str = "en") -> list[str]:
    """The words prompt F1 compares, by the rules of the module docstring."""
    text = "".join(char for char in text.lower() if not _is_punctuation(char))
    return [lemma(word, lang) for word in re.split(r"\s+", text) if word and word not in ARTICLES]


def prompt_f1(prediction: str, reference: str, lang: str = "en") -> float:
    """Word-overlap F1 in [0, 1] of ``prediction`` (e.g. ``d-proj(p_c)``) against ``reference`` (``p_d``)."""
    predicted, target = normalize_words(prediction, lang), normalize_words(reference, lang)
    if not predicted or not target:
        return float(predicted == target)
    common = sum((Counter(predicted) & Counter(target)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(target)
    return 2 * precision * recall / (precision + recall)


class PromptF1(evaluate.Metric):
    """``evaluate`` front end: ``PromptF1().compute(predictions=[...], references=[...])``.

    Returns ``f1`` (the mean over pairs) and ``per_pair``.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("keep_in_memory", True)
        super().__init__(**kwargs)

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=__doc__, citation="Khashabi et al. 2022, Prompt Waywardness (NAACL)",
            inputs_description="predictions: projected prompt texts; references: target texts; lang: simplemma code",
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Value("string")}))

    def _compute(self, predictions: Sequence[str], references: Sequence[str], lang: str = "en"):
        scores = [prompt_f1(p, r, lang) for p, r in zip(predictions, references)]
        return {"f1": sum(scores) / len(scores) if scores else float("nan"), "per_pair": scores}
