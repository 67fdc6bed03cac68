"""The scrutability reward of "Towards Interpretable Soft Prompts": minus the prompt's perplexity.

Calls ``rlprompt_interp.perplexity`` (the one implementation, shared with the scrutability
metric): each prompt text is tokenised by the scorer's own tokenizer and every token is scored,
the first one conditioned on the scorer's BOS token (its EOS token when it has none), so an
L-token prompt contributes L terms. The scorer is gpt2-xl when the hub is reachable and the
embedded default offline.
"""

from __future__ import annotations

from ..models import LoadedModel, load_lm
from ..perplexity import log_perplexity
from .base import PromptBatch, Reward, RewardOutput


class Perplexity(Reward):
    """``-perplexity`` of each prompt under ``scorer`` (``-log perplexity`` with ``log=True``), batched."""

    name = "perplexity"

    def __init__(self, scorer: LoadedModel | str = "auto", *, log: bool = False, batch_size: int = 32):
        self.scorer = scorer if isinstance(scorer, LoadedModel) else load_lm(scorer, role="scorer")
        self.log = log
        self.batch_size = batch_size

    def __repr__(self) -> str:
        return f"Perplexity({self.scorer.spec}{', log' if self.log else ''})"

    def __call__(self, prompts: PromptBatch, batch: dict) -> RewardOutput:
        log_ppl = log_perplexity(self.scorer, list(prompts), batch_size=self.batch_size).float()  # [N]
        ppl = log_ppl.exp()
        scores = -log_ppl if self.log else -ppl
        return RewardOutput(scores, {"perplexity": float(ppl.mean()), "log_perplexity": float(log_ppl.mean()),
                                     "perplexity/per_prompt": ppl})


def perplexity_scorer(reward: Reward) -> str | None:
    """The model behind the perplexity term of ``reward`` (a weighted sum or one reward), None without one: what
    a learned prompt records, so that ``eval`` measures its perplexity with the scorer it was trained against."""
    terms = getattr(reward, "terms", [(1.0, reward)])
    return next((term.scorer.spec for weight, term in terms if isinstance(term, Perplexity) and weight), None)
