"""``StyleClassifier``: the probability a style classifier gives the target style, as a reward on texts.

The classifier is a folder written by ``rlprompt-interp train-style-classifier`` (a head over
MiniLM sentence embeddings) or any Hugging Face sequence-classification model (a folder, or a hub
id when online: RLPrompt uses a BERT classifier fine-tuned on Yelp). Used alone it scores the
texts it is given (``prompts``); ``StyleTransferReward`` calls ``probabilities`` on the rewrites.
"""

from __future__ import annotations

import os
from typing import Sequence

import torch

from ..style.classifier import load_style_classifier
from .base import PromptBatch, Reward, RewardError, RewardOutput


class StyleClassifier(Reward):
    """``p(target style | text)`` for each text, in ``[0, 1]``.

    ``target_style`` is a style index (or a style name the classifier knows); without it every
    call's ``batch["target_style"]`` gives one target per text. ``label_map`` maps the task's style
    index to the classifier's label index when they differ (default: the same index).
    """

    name = "style"

    def __init__(self, classifier, *, target_style: int | str | None = None, label_map: dict | None = None,
                 batch_size: int = 64):
        self.classifier = load_style_classifier(classifier) if isinstance(classifier, (str, os.PathLike)) else classifier
        self.label_map = dict(label_map or {})
        self.target_style = self._style_index(target_style) if target_style is not None else None
        self.batch_size = batch_size

    def _style_index(self, style: int | str) -> int:
        if isinstance(style, str) and not style.isdigit():
            names = [s.lower() for s in self.classifier.styles]
            if style.lower() not in names:
                raise RewardError(f"style {style!r} is not one of the classifier's styles {self.classifier.styles}")
            return names.index(style.lower())
        return int(style)

    def _label(self, style: int) -> int:
        label = self.label_map.get(style, style)
        if not 0 <= label < len(self.classifier.styles):
            raise RewardError(f"target style {style} maps to label {label}, but the classifier has "
                              f"{len(self.classifier.styles)} labels {self.classifier.styles}; pass label_map")
        return label

    def probabilities(self, texts: Sequence[str], target_styles: int | Sequence[int] | None = None) -> torch.Tensor:
        """``[N]`` probability of each text's target style (one target for all, or one per text)."""
        texts = list(texts)
        if target_styles is None:
            if self.target_style is None:
                raise RewardError("StyleClassifier needs target_style=... or batch['target_style']")
            target_styles = self.target_style
        targets = [target_styles] * len(texts) if isinstance(target_styles, int) else list(target_styles)
        if len(targets) != len(texts):
            raise RewardError(f"{len(targets)} target styles for {len(texts)} texts")
        if not texts:
            return torch.zeros(0)
        probs = self.classifier.predict_proba(texts, batch_size=self.batch_size)  # [N, C]
        labels = torch.as_tensor([self._label(self._style_index(t)) for t in targets])
        return probs.gather(1, labels[:, None]).squeeze(1).float()

    def __call__(self, prompts: PromptBatch, batch: dict) -> RewardOutput:
        targets = batch.get("target_style", self.target_style) if batch else self.target_style
        probs = self.probabilities(list(prompts), targets)
        return RewardOutput(probs, {"style/probability": float(probs.mean()),
                                    "style/accuracy": float((probs > 0.5).float().mean())})

    def __repr__(self) -> str:
        return f"StyleClassifier(target={self.target_style})"
