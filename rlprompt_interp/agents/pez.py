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

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..atomic import write_atomic
from ..models import LoadedModel, load_lm
from ..perplexity import embedded_nll
from ..prompts import LearnedPrompt
from ..config import option
from .continuous import (PROJECTION_METRICS, ContinuousConfig, ContinuousPromptAgent, ContinuousPromptError,
                         embedding_table, nearest_tokens)

PPL_FORMS = ("perplexity", "log-perplexity")
CONTINUOUS_FILE = "continuous_prompt.safetensors"


@dataclass
class PEZConfig(ContinuousConfig):
    """PEZ's options: a larger learning-rate scale and cosine projection (Wen et al.), and the perplexity penalty."""

    lr_scale: float = option(1.0, "without --lr, the learning rate is this times the standard deviation of the "
                                  "vocabulary embeddings (a projection only changes when P moves by about an "
                                  "embedding's spread)", above=0)
    projection_metric: str = option("cosine", "nearest-token projection f_U (Wen et al. project by cosine "
                                              "similarity)", choices=PROJECTION_METRICS)
    ppl_weight: float = option(0.0, "λ of J = L(P̄) + λ·Perplexity(f_U(P̄)); 0 is plain PEZ", at_least=0)
    ppl_form: str = option("perplexity", "penalise the perplexity itself or its log (mean NLL per token)",
                           choices=PPL_FORMS)
    scorer: str = option("task", "the LM that scores the prompt's perplexity (task: the task LM itself; another "
                                 "needs the task LM's vocabulary and embedding width)")

    def resolved(self, task=None) -> "PEZConfig":
        return dataclasses.replace(super().resolved(task), scorer="task" if self.scorer == "auto" else self.scorer)


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
