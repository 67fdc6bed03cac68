"""Soft prompt tuning (Lester et al. 2021): trainable embeddings in the prompt slot of a frozen LM.

The loss is the cross-entropy over the verbalizer logits; the learned prompt keeps its
embeddings and, as text, their nearest vocabulary tokens (``--projection-metric``).
"""

from __future__ import annotations

import argparse

from .continuous import ContinuousConfig, ContinuousPromptAgent, config_options


class SoftPromptAgent(ContinuousPromptAgent):
    name = "soft-prompt"
    config_class = ContinuousConfig


def add_arguments(parser) -> None:
    """No flags of its own: the continuous agents' shared ones cover it."""


def from_cli_args(args: argparse.Namespace) -> SoftPromptAgent:
    return SoftPromptAgent(**config_options(args))
