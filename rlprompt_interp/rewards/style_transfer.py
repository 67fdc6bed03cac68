"""RLPrompt's text-style-transfer reward: rewrite each input with the prompt, score the rewrites.

For a prompt p and an input x, the task LM samples S rewrites (``style/generation.py``). Each sample
scores ``100 * (w_c * content + w_s * p(target style)) / (w_c + w_s)`` (an empty rewrite scores 0).
The S samples are split into G bootstrap groups; the pair's reward is the mean over groups of the
best sample in each group (RLPrompt's "max over bootstrap groups": it rewards what the prompt
*can* produce, with less noise than a single max). Then, per input, the rewards of the prompts
that shared it are z-scored (``shaping.zscore_by_key``), so an easy input does not outweigh a hard
one; a prompt's score is its mean over the inputs of the batch.

With one prompt (evaluating a greedy prompt) there is nothing to standardise against, so the raw
reward is returned. Compose with the perplexity term as before::

    reward = StyleTransferReward(task_lm, classifier, target_style=1) + 0.5 * Perplexity(scorer, log=True)
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..style.generation import RLPROMPT_TEMPLATE, GenerationSettings, generate_rewrites
from ..models import LoadedModel, load_lm
from .base import PromptBatch, Reward, RewardError, RewardOutput
from .content import ContentPreservation
from .shaping import zscore_by_key
from .style import StyleClassifier


def bootstrap_max(scores: torch.Tensor, num_groups: int) -> torch.Tensor:
    """Max of each of ``num_groups`` contiguous groups of the last dimension: ``[..., S] -> [..., G]``."""
    samples = scores.shape[-1]
    if num_groups < 1 or samples % num_groups:
        raise ValueError(f"{samples} samples cannot be split into {num_groups} equal bootstrap groups")
    return scores.reshape(*scores.shape[:-1], num_groups, samples // num_groups).max(-1).values


def combine_samples(content: torch.Tensor, style: torch.Tensor, *, content_weight: float = 1.0,
                    style_weight: float = 1.0, num_groups: int = 1) -> torch.Tensor:
    """Per-sample ``100 * weighted mean(content, style)`` ``[..., S]``, then the mean of the bootstrap maxima ``[...]``."""
    per_sample = 100.0 * (content_weight * content + style_weight * style) / (content_weight + style_weight)
    return bootstrap_max(per_sample, num_groups).mean(-1)


def zscore_per_input(rewards: torch.Tensor) -> torch.Tensor:
    """``[P, M]`` rewards of P prompts on M inputs, z-scored within each input (column)."""
    prompts, inputs = rewards.shape
    keys = [m for _ in range(prompts) for m in range(inputs)]  # row-major flatten: input index of each pair
    return zscore_by_key(rewards.reshape(-1), keys).reshape(prompts, inputs)


class StyleTransferReward(Reward):
    """Content + style of the rewrites a prompt makes the task LM produce; ``batch["input"]`` holds the inputs.

    ``target_style``: the style to write in (else ``batch["target_style"]``, one per input).
    ``settings``: sampling (``num_samples`` S, top-k, length cap, lower-casing); S must split into
    ``num_bootstraps`` equal groups. ``zscore``: standardise per input across prompts (when P > 1).
    """

    name = "style_transfer"

    def __init__(self, task_lm: LoadedModel | str, classifier: StyleClassifier | str, *,
                 content: ContentPreservation | None = None, target_style: int | None = None,
                 settings: GenerationSettings | None = None, num_bootstraps: int = 4, content_weight: float = 1.0,
                 style_weight: float = 1.0, zscore: bool = True, template: str = RLPROMPT_TEMPLATE):
        self.task_lm = task_lm if isinstance(task_lm, LoadedModel) else load_lm(task_lm, role="task")
        self.style = classifier if isinstance(classifier, StyleClassifier) else StyleClassifier(classifier)
        self.content = content or ContentPreservation()
        self.target_style = target_style
        self.settings = settings or GenerationSettings(num_samples=8)
        bootstrap_max(torch.zeros(self.settings.num_samples), num_bootstraps)  # fail early on a bad split
        self.num_bootstraps = num_bootstraps
        self.content_weight, self.style_weight = content_weight, style_weight
        self.zscore = zscore
        self.template = template
        self.calls = 0

    def __repr__(self) -> str:
        return (f"StyleTransferReward({self.task_lm.spec}, samples={self.settings.num_samples}, "
                f"bootstraps={self.num_bootstraps})")

    def _targets(self, batch: dict, inputs: int) -> list[int]:
        if self.target_style is not None:
            return [self.target_style] * inputs
        targets = batch.get("target_style")
        if targets is None or len(targets) != inputs:
            raise RewardError("StyleTransferReward needs target_style=... or batch['target_style'] (one per input)")
        return [int(t) for t in targets]

    def sample_scores(self, prompts: Sequence[str], inputs: Sequence[str], targets: Sequence[int]) -> dict:
        """Rewrites and their scores for every (prompt, input) pair: ``outputs[P][M][S]``, content/style ``[P, M, S]``."""
        P, M, S = len(prompts), len(inputs), self.settings.num_samples
        pair_prompts = [p for p in prompts for _ in inputs]
        pair_inputs = [x for _ in prompts for x in inputs]
        settings = GenerationSettings(**{**self.settings.__dict__, "seed": self.settings.seed + self.calls})
        self.calls += 1
        rewrites = generate_rewrites(self.task_lm, pair_prompts, pair_inputs, settings=settings,
                                     template=self.template)  # [P*M][S]
        flat = [text for samples in rewrites for text in samples]
        sources = [x for x, samples in zip(pair_inputs, rewrites) for _ in samples]
        flat_targets = [t for _ in prompts for t in targets for _ in range(S)]
        empty = torch.tensor([not text.strip() for text in flat])
        content = self.content.scores(sources, flat).masked_fill(empty, 0.0)
        style = self.style.probabilities(flat, flat_targets).masked_fill(empty, 0.0)
        outputs = [rewrites[i * M:(i + 1) * M] for i in range(P)]
        return {"outputs": outputs, "content": content.reshape(P, M, S), "style": style.reshape(P, M, S)}

    def __call__(self, prompts: PromptBatch, batch: dict) -> RewardOutput:
        inputs = (batch or {}).get("input")
        if not inputs:
            raise RewardError(f"StyleTransferReward needs the inputs to rewrite in batch['input']; got {sorted(batch or {})}")
        inputs = list(inputs)
        sampled = self.sample_scores(list(prompts), inputs, self._targets(batch, len(inputs)))
        raw = combine_samples(sampled["content"], sampled["style"], content_weight=self.content_weight,
                              style_weight=self.style_weight, num_groups=self.num_bootstraps)  # [P, M]
        shaped = zscore_per_input(raw) if self.zscore and len(prompts) > 1 else raw
        scores = shaped.mean(-1)  # [P]
        best = int(raw.mean(-1).argmax())
        logs = {"content": float(sampled["content"].mean()), "style": float(sampled["style"].mean()),
                "style_accuracy": float((sampled["style"] > 0.5).float().mean()),
                "style_transfer/raw": float(raw.mean()), "style_transfer/raw_per_prompt": raw.mean(-1),
                "style_transfer/example": f"{inputs[0]!r} -> {sampled['outputs'][best][0][0]!r}"}
        return RewardOutput(scores, logs)
