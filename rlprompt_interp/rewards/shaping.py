"""Reward stabilisation as RLPrompt uses it: a linear map of the raw range, and per-input z-scores."""

from __future__ import annotations

from typing import Hashable, Sequence

import torch


def linear_map(scores: torch.Tensor, old: tuple[float, float], new: tuple[float, float]) -> torch.Tensor:
    """Map ``[old_min, old_max]`` linearly onto ``[new_min, new_max]`` (values outside stay outside)."""
    (old_min, old_max), (new_min, new_max) = old, new
    if old_max == old_min:
        raise ValueError(f"the old range {old} is empty")
    return (scores - old_min) / (old_max - old_min) * (new_max - new_min) + new_min


def zscore_by_key(scores: torch.Tensor, keys: Sequence[Hashable] | None = None, eps: float = 1e-4) -> torch.Tensor:
    """Standardise scores within each group of equal keys: ``(s - mean_group) / (std_group + eps)``.

    ``keys`` names the input each score belongs to (the same source sentence, or one training
    batch); ``None`` puts every score in one group. A group of one gets 0.
    """
    scores = scores.float()
    keys = list(keys) if keys is not None else [0] * len(scores)
    if len(keys) != len(scores):
        raise ValueError(f"{len(scores)} scores but {len(keys)} keys")
    result = torch.zeros_like(scores)
    groups: dict[Hashable, list[int]] = {}
    for index, key in enumerate(keys):
        groups.setdefault(key, []).append(index)
    for members in groups.values():
        group = scores[members]
        if len(members) > 1:
            result[members] = (group - group.mean()) / (group.std(unbiased=False) + eps)
    return result
