"""Waywardness-constrained prompt tuning (Khashabi et al. 2022).

Soft prompt tuning pulled toward an arbitrary target text p_d:
``loss = CE(P) + γ · ‖P − E(p_d)‖²₂ / L``, starting at ``E(p_d)``, with L the number of tokens of
p_d (the prompt has the target's length). The question it answers: how close to an arbitrary
text can a prompt that solves the task stay? Prompt F1 between the nearest-token projection
(dot product, as in the paper) and the target measures it.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..models import LoadedModel
from .continuous import (ContinuousConfig, ContinuousPromptAgent, ContinuousPromptError, config_options,
                         embedding_table, text_ids)


@dataclass
class WaywardConfig(ContinuousConfig):
    target_text: str = ""
    gamma: float = 0.01

    def __post_init__(self):
        super().__post_init__()
        if not self.target_text.strip():
            raise ContinuousPromptError(
                "wayward needs a target text: --target-text '...' or --target-file F --target-key K")
        if self.gamma < 0:
            raise ContinuousPromptError(f"gamma must be non-negative, got {self.gamma}")


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


def add_arguments(parser) -> None:
    group = parser.add_section("wayward", "--agent wayward", agents=("wayward",))
    group.add_argument("--target-text", help="(wayward) the text the prompt is pulled toward")
    group.add_argument("--target-file", help="(wayward) a JSON object name -> text, e.g. natural_prompts.json")
    group.add_argument("--target-key", help="(wayward) which entry of --target-file")
    group.add_argument("--gamma", type=float, default=0.01, help="(wayward) weight γ of the pull toward the target")


def from_cli_args(args: argparse.Namespace) -> WaywardAgent:
    if args.target_text and args.target_file:
        raise ContinuousPromptError("give either --target-text or --target-file/--target-key, not both")
    target = args.target_text or (read_target(args.target_file, args.target_key) if args.target_file else "")
    return WaywardAgent(**config_options(args), target_text=target, gamma=args.gamma)
