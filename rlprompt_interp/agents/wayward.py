"""Waywardness-constrained prompt tuning (Khashabi et al. 2022).

Soft prompt tuning pulled toward an arbitrary target text p_d:
``loss = CE(P) + γ · ‖P − E(p_d)‖²₂ / L``, starting at ``E(p_d)``, with L the number of tokens of
p_d (the prompt has the target's length). The question it answers: how close to an arbitrary
text can a prompt that solves the task stay? Prompt F1 between the nearest-token projection
(dot product, as in the paper) and the target measures it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..models import LoadedModel
from ..config import option
from .continuous import ContinuousConfig, ContinuousPromptAgent, ContinuousPromptError, embedding_table, text_ids


@dataclass
class WaywardConfig(ContinuousConfig):
    """The target text (given, or read from a JSON file of targets) and the weight of the pull toward it."""

    target_text: str | None = option(None, "the text the prompt is pulled toward")
    target_file: str | None = option(None, "a JSON object name -> text, e.g. natural_prompts.json")
    target_key: str | None = option(None, "which entry of --target-file")
    gamma: float = option(0.01, "weight γ of the pull toward the target", at_least=0)

    def check(self) -> None:
        super().check()
        if self.target_file:  # the text is resolved once and recorded beside the file it came from
            text = read_target(self.target_file, self.target_key)
            if self.target_text and self.target_text != text:
                raise ContinuousPromptError("give either --target-text or --target-file/--target-key, not both")
            self.target_text = text
        if not (self.target_text or "").strip():
            raise ContinuousPromptError(
                "wayward needs a target text: --target-text '...' or --target-file F --target-key K")


class WaywardAgent(ContinuousPromptAgent):
    name = "wayward"
    config_class = WaywardConfig

    def setup(self, lm: LoadedModel, task, prompt_length: int) -> int:
        self.target_ids = text_ids(lm, self.config.target_text)
        self.target = embedding_table(lm)[self.target_ids].to(lm.device)  # [L, d]
        if prompt_length not in (None, 0, len(self.target_ids)) and not self.config.quiet:
            print(f"wayward: the prompt takes the target's length, {len(self.target_ids)} tokens "
                  f"(prompt_length {prompt_length} ignored)")
        return len(self.target_ids)

    def initial_prompt(self, lm: LoadedModel, prompt_length: int, generator: torch.Generator) -> torch.Tensor:
        return self.target.clone()

    def penalty(self, lm: LoadedModel, prompt: torch.Tensor, seen: torch.Tensor, ids):
        distance = (prompt - self.target).pow(2).sum() / prompt.shape[0]  # ‖P − E(p_d)‖² / L
        return self.config.gamma * distance, {"distance": distance.item()}

    def provenance_extra(self) -> dict:
        return {"target_text": self.config.target_text, "target_ids": list(self.target_ids), "gamma": self.config.gamma}


def read_target(path: str | Path, key: str | None) -> str:
    """A target text from a JSON object name -> text (the layout of ``waywardness-targets/*.json``)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ContinuousPromptError(f"target file {path} does not exist")
    targets = json.loads(path.read_text())
    if not isinstance(targets, dict):
        raise ContinuousPromptError(f"{path} must hold a JSON object name -> target text")
    if key is None or key not in targets:
        names = ", ".join(list(targets)[:5])
        raise ContinuousPromptError(
            f"{'no --target-key given' if key is None else f'{key!r} is not in {path}'}; "
            f"{len(targets)} targets there, e.g. {names}"
        )
    return targets[key]
