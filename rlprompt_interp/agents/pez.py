"""PEZ (Wen et al. 2023) and PEZ with a perplexity penalty ("unembedded gradient descent").

Each step every position of the continuous prompt ``P`` is projected to its nearest vocabulary
embedding, ``P̄ = E[f_U(P)]``; the loss and its gradient are taken at ``P̄`` and applied to ``P``
(straight-through: ``P + (P̄ - P).detach()`` has the value of ``P̄`` and passes gradients to ``P``).
With ``ppl_weight`` λ > 0 the objective is ``J = L(P̄) + λ · Perplexity_scorer(f_U(P̄))``; the
perplexity is differentiated at the projected embeddings too, which needs a scorer with the task
LM's vocabulary and embedding width. The learned prompt is the projection with the best dev
accuracy, keeping the continuous prompt it came from.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..atomic import write_atomic
from ..models import LoadedModel, load_lm
from ..perplexity import embedded_nll
from ..prompts import LearnedPrompt
from .continuous import (ContinuousConfig, ContinuousPromptAgent, ContinuousPromptError, config_options,
                         embedding_table, nearest_tokens)

PPL_FORMS = ("perplexity", "log-perplexity")
CONTINUOUS_FILE = "continuous_prompt.safetensors"


@dataclass
class PEZConfig(ContinuousConfig):
    lr_scale: float = 1.0  # a projection only changes when P moves by about an embedding's spread
    projection_metric: str = "cosine"  # Wen et al. project by cosine similarity
    ppl_weight: float = 0.0
    ppl_form: str = "perplexity"
    scorer: str = "task"  # "task" (or "auto"): the task LM scores its own prompt

    def __post_init__(self):
        super().__post_init__()
        if self.ppl_weight < 0:
            raise ContinuousPromptError(f"ppl_weight must be non-negative, got {self.ppl_weight}")
        if self.ppl_form not in PPL_FORMS:
            raise ContinuousPromptError(f"unknown ppl_form {self.ppl_form!r}; choose one of {list(PPL_FORMS)}")


class PEZAgent(ContinuousPromptAgent):
    name = "pez"
    config_class = PEZConfig

    def method_name(self) -> str:
        return "pez-ppl" if self.config.ppl_weight > 0 else "pez"

    def setup(self, lm: LoadedModel, task, prompt_length: int) -> int:
        self.table = embedding_table(lm)  # projected onto every step: built once
        self.scorer = None
        if self.config.ppl_weight > 0:
            spec = self.config.scorer
            same = spec in ("task", "auto", lm.spec)
            self.scorer = lm if same else load_lm(spec, role="scorer", dtype=self.config.dtype)
            check_same_vocabulary(lm, self.scorer)
        return prompt_length

    def step_prompt(self, lm: LoadedModel, prompt: torch.Tensor):
        ids = nearest_tokens(prompt, self.table, self.config.projection_metric)  # [L]
        projected = prompt + (self.table[ids] - prompt).detach()  # value P̄, gradient to P
        return projected, ids.tolist()

    def penalty(self, lm: LoadedModel, prompt: torch.Tensor, seen: torch.Tensor, ids):
        if self.scorer is None:
            return None, {}
        # the scorer's own embeddings of the projected tokens, with the gradient passed on to P
        scorer_rows = self.scorer.model.get_input_embeddings().weight.detach()[ids].float()
        inputs = scorer_rows + (seen - seen.detach())
        log_ppl = embedded_nll(self.scorer, ids, inputs).mean()
        term = log_ppl.exp() if self.config.ppl_form == "perplexity" else log_ppl
        return self.config.ppl_weight * term, {"prompt_log_ppl": log_ppl.item()}

    def candidate(self, lm: LoadedModel, prompt: torch.Tensor) -> LearnedPrompt:
        ids = nearest_tokens(prompt, self.table, self.config.projection_metric).tolist()
        return LearnedPrompt(text=lm.tokenizer.decode(ids), token_ids=ids)

    def save_extra(self, output_dir: Path, best: dict) -> None:
        """The continuous prompt whose projection is the learned prompt (the prompt itself stays discrete,
        so every evaluation scores the tokens)."""
        path = Path(output_dir) / CONTINUOUS_FILE
        write_atomic(path, lambda tmp: save_file({"embeddings": best["continuous"].float().contiguous()}, tmp))

    def provenance_extra(self) -> dict:
        extra = {"projection_metric": self.config.projection_metric}
        if self.scorer is not None:
            extra["scorer"] = self.scorer.spec
        return extra


def load_continuous_prompt(folder: str | Path) -> torch.Tensor:
    """``[L, d]``: the continuous prompt behind a PEZ prompt saved in ``folder``."""
    path = Path(folder) / CONTINUOUS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: {folder} holds no PEZ prompt trained with an output folder")
    return load_file(str(path))["embeddings"]


def check_same_vocabulary(lm: LoadedModel, scorer: LoadedModel) -> None:
    """The perplexity gradient is taken at the task LM's projected tokens, so the scorer must read
    the same token ids with embeddings of the same width."""
    if scorer.is_encoder_decoder or scorer.is_masked_lm:
        raise ContinuousPromptError(f"the perplexity scorer must be a causal LM; {scorer.spec!r} is "
                                    f"{'an encoder-decoder' if scorer.is_encoder_decoder else 'a masked LM'}: pass "
                                    "--scorer with a causal one")
    if scorer.tokenizer.get_vocab() != lm.tokenizer.get_vocab():
        raise ContinuousPromptError(
            f"PEZ with a perplexity penalty needs a scorer with the task LM's vocabulary: {scorer.spec!r} has "
            f"{len(scorer.tokenizer)} tokens and {lm.spec!r} {len(lm.tokenizer)}, or the same size with other tokens; "
            f"use --scorer task (the task LM scores its own prompt) or a model of the same family"
        )
    width, scorer_width = embedding_table(lm).shape[1], scorer.model.get_input_embeddings().weight.shape[1]
    if width != scorer_width:
        raise ContinuousPromptError(
            f"the scorer {scorer.spec!r} shares the vocabulary but embeds tokens in {scorer_width} dimensions, the task "
            f"LM {lm.spec!r} in {width}; the perplexity gradient cannot be applied to the prompt; use --scorer task"
        )


def add_arguments(parser) -> None:
    group = parser.add_section("pez", "--agent pez", agents=("pez",))
    group.add_argument("--ppl-weight", type=float, default=0.0,
                       help="(pez) λ of J = L(P̄) + λ·Perplexity(f_U(P̄)); 0 is plain PEZ")
    group.add_argument("--ppl-form", choices=PPL_FORMS, default="perplexity",
                       help="(pez) penalise the perplexity itself or its log (mean NLL per token)")


def from_cli_args(args: argparse.Namespace) -> PEZAgent:
    options = config_options(args)
    options.update(ppl_weight=args.ppl_weight, ppl_form=args.ppl_form,
                   scorer="task" if args.scorer in (None, "auto") else args.scorer)
    return PEZAgent(**options)
