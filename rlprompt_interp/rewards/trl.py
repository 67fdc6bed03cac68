"""Any of the toolkit's rewards as a TRL reward function ``f(prompts, completions, **kwargs) -> list[float]``.

TRL's ``GRPOTrainer`` / ``RLOOTrainer`` sample completions of the dataset's prompts and score them
with reward functions. For prompt search the *completions* are the candidate prompts and the
dataset's prompt is only the instruction the policy writes them after, so the wrapper scores the
completions against a batch of the task's training examples::

    from trl import GRPOTrainer
    from rlprompt_interp.rewards import TaskGapReward, TRLReward

    accuracy = TRLReward(TaskGapReward(task, lm), train_data, examples_per_call=16, seed=0)
    GRPOTrainer(model, reward_funcs=[accuracy], ...)

Every call scores all completions on the *same* examples (so a group's rewards differ only by
the prompts, which is what the group baseline needs), drawn afresh per training step from
``seed`` and the trainer's step: a resumed run, and every process of a distributed one, sees the
same batches. The reward's scalar logs go to TRL's ``log_metric`` (averaged per logging step and
reported with the trainer's own metrics, through ``report_to``); its per-prompt values become
columns of TRL's completions table (``log_extra``).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from .base import PromptBatch, Reward, WeightedSum, as_reward


def completion_text(completion: Any) -> str:
    """The text of a standard completion (a string) or a conversational one (a list of messages)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, (list, tuple)) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get("content", "")
        if isinstance(content, list):  # content blocks: keep the text parts
            return "".join(part.get("text", "") for part in content if isinstance(part, dict))
        return str(content)
    raise TypeError(f"cannot read a prompt from the completion {completion!r:.200}")


def reward_name(reward: Reward) -> str:
    """``accuracy+perplexity`` for a weighted sum of those two, the reward's own name otherwise."""
    if isinstance(reward, WeightedSum):
        return "+".join(term.name for _, term in reward.terms)
    return reward.name


class TRLReward:
    """Wraps a Reward (or a plain ``f(prompts, **batch)``, or ``"module:function"``) into TRL's signature.

    ``train_data`` holds the examples column-wise (``{"sentence": [...], "label": [...]}``, as
    ``agents.rlprompt.task_columns`` gives them); ``None`` gives the reward an empty batch
    (perplexity, style and plain functions need no examples). Given the policy's ``tokenizer``,
    its special tokens are dropped from TRL's ``completion_ids`` (a completion that stopped early
    ends with EOS) and the remaining ids reach the reward as ``PromptBatch.token_ids``, so rewards
    that read tokens see the sampled ones instead of a re-tokenisation. ``last_logs`` keeps the
    latest call's scalar logs for callers outside a trainer.
    """

    def __init__(self, reward: Reward | Any, train_data: dict | None = None, *, examples_per_call: int = 16,
                 seed: int = 0, tokenizer=None, name: str | None = None):
        self.reward = as_reward(reward)
        self.train_data = {key: list(values) for key, values in (train_data or {}).items()}
        sizes = {len(values) for values in self.train_data.values()}
        if len(sizes) > 1:
            raise ValueError(f"the columns of train_data differ in length: {sorted(sizes)}")
        self.size = sizes.pop() if sizes else 0
        if examples_per_call < 1:
            raise ValueError(f"examples_per_call must be at least 1, got {examples_per_call}")
        self.examples_per_call, self.seed = examples_per_call, seed
        self.special_ids = set(tokenizer.all_special_ids) if tokenizer is not None else None
        self.__name__ = name or reward_name(self.reward)  # TRL's metrics are named after it: rewards/<name>/mean
        self.calls = 0
        self.last_logs: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"TRLReward({self.reward!r}, {self.size} examples, {self.examples_per_call} per call)"

    def batch(self, step: int) -> dict:
        """The examples scored at training step ``step``: the same for the same (seed, step)."""
        if not self.size:
            return {}
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        rows = torch.randperm(self.size, generator=generator)[:min(self.examples_per_call, self.size)].tolist()
        return {key: [values[i] for i in rows] for key, values in self.train_data.items()}

    def prompts(self, completions: Sequence[Any], completion_ids: Sequence[Sequence[int]] | None) -> PromptBatch:
        """The completions as a PromptBatch: their texts, and their token ids when the tokenizer is known."""
        texts = [completion_text(c) for c in completions]
        if completion_ids is None or self.special_ids is None:
            return PromptBatch(texts)
        return PromptBatch(texts, [[t for t in ids if t not in self.special_ids] for ids in completion_ids])

    def __call__(self, prompts: Sequence[Any] = (), completions: Sequence[Any] = (), completion_ids=None,
                 trainer_state=None, log_metric=None, log_extra=None, **kwargs) -> list[float]:
        step = trainer_state.global_step if trainer_state is not None else self.calls
        self.calls += 1
        out = self.reward(self.prompts(completions, completion_ids), self.batch(step))
        scalars, columns = {}, {}
        for key, value in out.logs.items():
            if isinstance(value, torch.Tensor) and value.numel() == len(completions) and value.dim() == 1:
                columns[key] = value.float().tolist()
            elif isinstance(value, (int, float)) or (isinstance(value, torch.Tensor) and value.numel() == 1):
                scalars[key] = float(value)
        self.last_logs = scalars
        if log_metric is not None:
            for key, value in scalars.items():
                log_metric(key, value)
        if log_extra is not None:
            for key, values in columns.items():
                log_extra(key, values)
        return out.scores.float().tolist()
