"""The Reward interface, weighted composition, and the adapter for plain functions.

A reward scores all N finished prompts of a step in one call (which is what allows batched
forwards, caches and per-input z-scores)::

    reward(prompts: PromptBatch, batch: dict) -> RewardOutput(scores=[N], logs={...})

``TaskGapReward() + 0.01 * Perplexity()`` builds a weighted sum. A plain function with the shape
TRL uses for reward functions, ``f(prompts: list[str], **batch) -> list[float]``, is accepted
wherever a Reward is (see ``as_reward``).
"""

from __future__ import annotations

import importlib
import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch


class RewardError(RuntimeError):
    """A reward that raised, or returned the wrong number of scores or non-finite scores."""


class PromptBatch(list):
    """A list of prompt texts that also carries their token ids (policy tokenizer), when known.

    Being a ``list[str]`` it can be passed straight to plain reward functions; rewards that
    need the exact tokens read ``token_ids`` instead of re-tokenising the text.
    """

    def __init__(self, texts: Sequence[str], token_ids: Sequence[Sequence[int]] | None = None):
        super().__init__(texts)
        if token_ids is not None and len(token_ids) != len(texts):
            raise ValueError(f"{len(texts)} prompt texts but {len(token_ids)} token id lists")
        self.token_ids = [list(ids) for ids in token_ids] if token_ids is not None else None


@dataclass
class RewardOutput:
    """``scores``: float tensor ``[N]``, one per prompt; ``logs``: scalars (or ``[N]`` tensors) to report."""

    scores: torch.Tensor
    logs: dict[str, Any] = field(default_factory=dict)


class Reward(ABC):
    """Scores a batch of finished prompts; compose with ``+`` and scalar ``*``."""

    name: str = "reward"

    @abstractmethod
    def __call__(self, prompts: PromptBatch, batch: dict) -> RewardOutput:
        ...

    def state_dict(self) -> dict:
        """What a checkpoint must keep for a resumed run to score exactly as an uninterrupted one
        (e.g. a memo of scored prompts); plain lists, numbers, strings and tensors only."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def __add__(self, other) -> "WeightedSum":
        return WeightedSum.of(self) + WeightedSum.of(as_reward(other))

    __radd__ = __add__

    def __mul__(self, weight: float) -> "WeightedSum":
        return WeightedSum([(float(weight), self)])

    __rmul__ = __mul__


class WeightedSum(Reward):
    """``sum_k weight_k * reward_k``; logs each term under its name, its raw mean score and its
    seconds (``time/<name>``: what a step's reward time is spent on)."""

    name = "weighted_sum"

    def __init__(self, terms: list[tuple[float, Reward]]):
        if not terms:
            raise ValueError("a weighted sum needs at least one reward")
        self.terms = terms

    @classmethod
    def of(cls, reward: Reward) -> "WeightedSum":
        return reward if isinstance(reward, WeightedSum) else cls([(1.0, reward)])

    def __add__(self, other) -> "WeightedSum":
        return WeightedSum(self.terms + WeightedSum.of(as_reward(other)).terms)

    __radd__ = __add__

    def __mul__(self, weight: float) -> "WeightedSum":
        return WeightedSum([(float(weight) * w, r) for w, r in self.terms])

    __rmul__ = __mul__

    def __call__(self, prompts: PromptBatch, batch: dict) -> RewardOutput:
        total, logs = None, {}
        for weight, reward in self.terms:
            if weight == 0.0:
                continue  # a zero coefficient costs nothing, e.g. "accuracy=0,perplexity=1"
            started = time.perf_counter()
            out = reward(prompts, batch)
            total = weight * out.scores if total is None else total + weight * out.scores
            logs.update(out.logs)
            logs[f"{reward.name}/score"] = float(out.scores.float().mean())
            logs[f"time/{reward.name}"] = time.perf_counter() - started
        if total is None:
            raise ValueError("every weight of the reward is zero")
        return RewardOutput(total, logs)

    def state_dict(self) -> dict:
        return {"terms": [reward.state_dict() for _, reward in self.terms]}

    def load_state_dict(self, state: dict) -> None:
        for (_, reward), term_state in zip(self.terms, state["terms"]):
            reward.load_state_dict(term_state)

    def __repr__(self) -> str:
        return " + ".join(f"{w:g} * {r!r}" for w, r in self.terms)


def term_scores(logs: dict) -> dict:
    """Each term's mean score in a weighted sum's logs (``gap/score``, ``keywords/score`` for a ``--reward-fn
    keywords``) when the sum has several terms: what the terminal shows beside the summed reward."""
    terms = {key: value for key, value in logs.items() if key.endswith("/score")}
    return terms if len(terms) > 1 else {}


class FunctionReward(Reward):
    """Adapts ``f(prompts: list[str], **batch) -> list[float]``, checking what it returns."""

    def __init__(self, function: Callable[..., Sequence[float]], name: str | None = None):
        self.function = function
        self.name = name or getattr(function, "__name__", "function")

    def __call__(self, prompts: PromptBatch, batch: dict) -> RewardOutput:
        try:
            values = self.function(list(prompts), **batch)
        except Exception as error:
            raise RewardError(f"reward function {self.name!r} raised {error.__class__.__name__}: {error}") from error
        try:
            scores = torch.as_tensor([float(v) for v in values], dtype=torch.float32)
        except (TypeError, ValueError) as error:
            raise RewardError(f"reward function {self.name!r} must return a list of numbers, got {values!r:.200}") from error
        if len(scores) != len(prompts):
            raise RewardError(f"reward function {self.name!r} returned {len(scores)} scores for {len(prompts)} prompts")
        bad = [i for i, v in enumerate(scores.tolist()) if not math.isfinite(v)]
        if bad:
            raise RewardError(f"reward function {self.name!r} returned non-finite scores (NaN or inf) for prompts "
                              f"{bad[:5]}, e.g. {prompts[bad[0]]!r}")
        return RewardOutput(scores, {f"{self.name}/mean": float(scores.mean())})

    def __repr__(self) -> str:
        return f"FunctionReward({self.name})"


def load_function(path: str) -> Callable:
    """``"package.module:function"`` -> the function (for ``--reward-fn``)."""
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise RewardError(f"reward function {path!r} must look like 'my_module:my_function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise RewardError(f"cannot import module {module_name!r} for reward function {path!r}: {error}") from error
    function = getattr(module, attribute, None)
    if not callable(function):
        raise RewardError(f"module {module_name!r} has no function {attribute!r}")
    return function


def as_reward(obj) -> Reward:
    """A Reward from a Reward, a plain function, or a ``"module:function"`` string."""
    if isinstance(obj, Reward):
        return obj
    if isinstance(obj, str):
        return FunctionReward(load_function(obj), name=obj.partition(":")[2])
    if callable(obj):
        return FunctionReward(obj)
    raise TypeError(f"cannot use {obj!r} as a reward: pass a Reward, a function or 'module:function'")
