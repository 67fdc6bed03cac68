"""Soft prompt tuning (Lester et al. 2021): trainable embeddings in the prompt slot of a frozen LM.

The loss is the cross-entropy over the verbalizer logits; the learned prompt keeps its
embeddings and, as text, their nearest vocabulary tokens (``--projection-metric``).
"""

from __future__ import annotations

from .continuous import ContinuousConfig, ContinuousPromptAgent


class SoftPromptAgent(ContinuousPromptAgent):
    name = "soft-prompt"
    config_class = ContinuousConfig
