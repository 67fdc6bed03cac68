"""Labels for new, unlabelled texts: what a learned prompt is for once it is trained.

The class of a text is read exactly as ``eval`` reads it (``evaluation.class_logits``: the same
template, verbalizers, token ids or embeddings and batching), so a prompt labels a text the way
its reported accuracy counted it; the verbalizers' logits, normalised over the classes, are the
class probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import datasets
import torch

from .evaluation import ScoredPrompt, class_logits, without_empty_text
from .models import LoadedModel
from .tasks import ClassificationTask, TaskDataError


@dataclass
class Predictions:
    """One predicted class per text, and the probability of each class (``[N, C]``, rows sum to 1)."""

    label_names: tuple[str, ...]
    probabilities: torch.Tensor

    def __len__(self) -> int:
        return len(self.probabilities)

    @property
    def indices(self) -> list[int]:
        return self.probabilities.argmax(-1).tolist()

    @property
    def labels(self) -> list[str]:
        return [self.label_names[index] for index in self.indices]

    def rows(self) -> list[dict]:
        """Per text: ``{"label": name, "probabilities": {name: p, ...}}``."""
        return [{"label": self.label_names[index], "probabilities": dict(zip(self.label_names, row))}
                for index, row in zip(self.indices, self.probabilities.tolist())]


def classify(task: ClassificationTask, lm: LoadedModel, prompt: str | ScoredPrompt,
             texts: Sequence[str | dict], *, batch_size: int = 32, progress: bool = False) -> Predictions:
    """Label ``texts`` with ``prompt`` placed by ``task``'s template: strings for a task of one text field, or
    dicts holding each of the template's fields (BoolQ: ``passage`` and ``question``)."""
    examples = examples_from_texts(task, texts)
    logits = class_logits(task, lm, without_empty_text(prompt), examples, batch_size=batch_size, progress=progress,
                          desc=f"predict {task.name}")
    return Predictions(tuple(task.label_names), logits.float().softmax(-1).cpu())


def examples_from_texts(task: ClassificationTask, texts: Sequence[str | dict]) -> datasets.Dataset:
    """The texts as examples of ``task`` (its template's fields), each one checked: a text the template cannot
    place (a missing field, an empty text) is named by its position, counting from 1."""
    fields = task.template.fields
    if not texts:
        raise TaskDataError("there are no texts to label")
    columns: dict[str, list[str]] = {name: [] for name in fields}
    for number, text in enumerate(texts, start=1):
        row = {fields[0]: text} if isinstance(text, str) and len(fields) == 1 else text
        if not isinstance(row, dict) or any(name not in row for name in fields):
            raise TaskDataError(f"text {number} is {text!r:.80}; task {task.name!r} needs "
                                + ("a string or " if len(fields) == 1 else "") + f"a dict of {list(fields)}")
        for name in fields:
            value = "" if row[name] is None else str(row[name])
            if not value.strip():
                what = "is empty" if len(fields) == 1 else f"has an empty {name!r}"
                raise TaskDataError(f"text {number} {what} (or white space only): the prompt needs text to read; "
                                    "leave the row out or fill it")
            columns[name].append(value)
    return datasets.Dataset.from_dict(columns)
