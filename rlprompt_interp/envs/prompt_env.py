"""Prompt writing as a gymnasium environment: one token per step, the prompt's score at the end.

``PromptEnv`` builds one prompt per episode; ``PromptVectorEnv`` builds N in lock-step and scores
all N finished prompts with **one** reward call (what lets a reward batch its forwards, reuse its
caches and z-score over the N prompts). Any agent can drive them, random actions included::

    env = gymnasium.make("rlprompt_interp/Prompt-v0", reward=my_reward, tokenizer=tok, prompt_length=5)

(the id is registered when ``rlprompt_interp.envs`` is imported; ``gymnasium.make(
"rlprompt_interp.envs:rlprompt_interp/Prompt-v0", ...)`` imports it on the way). ``my_reward`` is a
``Reward`` or a plain ``f(prompts, **batch) -> list[float]``.

Observation: ``{"token_ids": int64[L] (0 after the current length), "length": int}``; action: a
token id (``Discrete(vocab_size)``); reward 0 until the last token, then the prompt's score;
``info`` of the last step carries the prompt text and the reward's logs.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np
import gymnasium
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from ..registration import ENV_ID, register  # noqa: F401  (registered on `import rlprompt_interp`)
from ..rewards import PromptBatch, Reward, as_reward


def _observation_space(vocab_size: int, prompt_length: int) -> spaces.Dict:
    return spaces.Dict({"token_ids": spaces.Box(0, vocab_size - 1, shape=(prompt_length,), dtype=np.int64),
                        "length": spaces.Discrete(prompt_length + 1)})


def _scalar_logs(logs: dict, row: int | None = None) -> dict:
    """The reward's logs as plain numbers; per-prompt vectors give the entry of ``row``."""
    result = {}
    for key, value in logs.items():
        if isinstance(value, (int, float)):
            result[key] = float(value)
        elif row is not None and hasattr(value, "__len__") and not isinstance(value, str):
            result[key] = float(value[row])
    return result


def stratified_rows(rng: np.random.Generator, groups, count: int) -> np.ndarray:
    """Row indices with every group (class) equally often: ``round(count / K)`` of each of the K groups (at least
    one; all of a smaller group), drawn without replacement, in group order.

    A gap reward averaged over a batch that misses a class, or holds one class three times as often as another,
    ranks prompts by the luck of the draw; equal counts leave only the examples themselves to chance."""
    groups = np.asarray(groups)
    kinds = np.unique(groups)
    per_group = max(1, round(count / len(kinds)))
    rows = []
    for kind in kinds:
        members = np.flatnonzero(groups == kind)
        rows.append(rng.choice(members, min(per_group, len(members)), replace=False))
    return np.concatenate(rows)


class _PromptScorer:
    """What both environments share: decoding ids, drawing the example batch, calling the reward (not a
    classification task, which the reward may hold)."""

    def __init__(self, reward: Reward | Callable, tokenizer, prompt_length: int, vocab_size: int | None,
                 data: dict | None, examples_per_episode: int | None, stratify_by: str | None = None):
        if prompt_length < 1:
            raise ValueError(f"prompt_length must be at least 1, got {prompt_length}")
        self.reward = as_reward(reward)
        self.tokenizer = tokenizer
        self.prompt_length = prompt_length
        self.vocab_size = vocab_size or len(tokenizer)
        self.data = data or {}
        self.examples_per_episode = examples_per_episode
        if stratify_by is not None and self.data and stratify_by not in self.data:
            raise ValueError(f"cannot stratify the example draws by {stratify_by!r}: the data has the columns "
                             f"{sorted(self.data)}")
        self.stratify_by = stratify_by if self.data else None

    def batch(self, rng: np.random.Generator) -> dict:
        if not self.data:
            return {}
        size = len(next(iter(self.data.values())))
        count = min(self.examples_per_episode or size, size)
        if self.stratify_by is not None and count < size:
            rows = stratified_rows(rng, self.data[self.stratify_by], count)
        else:
            rows = rng.choice(size, count, replace=False) if count < size else np.arange(size)
        return {name: [values[i] for i in rows] for name, values in self.data.items()}

    def score(self, token_ids: np.ndarray, batch: dict):
        ids = [list(map(int, row)) for row in token_ids]
        texts = [self.tokenizer.decode(row) for row in ids]
        out = self.reward(PromptBatch(texts, ids), batch)
        scores = np.asarray(out.scores.detach().float().cpu().numpy(), dtype=np.float64)
        if scores.shape != (len(ids),):
            raise ValueError(f"the reward returned {scores.shape} scores for {len(ids)} prompts")
        return texts, scores, out.logs


class _OldTaskName:
    """``env.task``: the old name of ``env.scorer`` (it never was a classification task), kept for old callers."""

    @property
    def task(self) -> _PromptScorer:
        warnings.warn("env.task is deprecated; use env.scorer", DeprecationWarning, stacklevel=2)
        return self.scorer


class PromptEnv(_OldTaskName, gymnasium.Env):
    """One prompt of ``prompt_length`` tokens per episode, scored by ``reward`` at the last token.

    ``data``: examples as columns (``{"sentence": [...], "label": [...]}``) passed to the reward,
    ``examples_per_episode`` of them drawn at each reset (all when None).
    """

    metadata = {"render_modes": []}

    def __init__(self, reward: Reward | Callable, tokenizer, prompt_length: int = 5, *, vocab_size: int | None = None,
                 data: dict | None = None, examples_per_episode: int | None = None, stratify_by: str | None = None):
        self.scorer = _PromptScorer(reward, tokenizer, prompt_length, vocab_size, data, examples_per_episode,
                                    stratify_by)
        self.action_space = spaces.Discrete(self.scorer.vocab_size)
        self.observation_space = _observation_space(self.scorer.vocab_size, prompt_length)
        self._ids = np.zeros(prompt_length, dtype=np.int64)
        self._length = 0
        self._batch: dict = {}

    def _obs(self) -> dict:
        return {"token_ids": self._ids.copy(), "length": self._length}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._ids[:] = 0
        self._length = 0
        self._batch = self.scorer.batch(self.np_random)
        return self._obs(), {}

    def step(self, action):
        if self._length >= self.scorer.prompt_length:
            raise RuntimeError("the prompt is finished; call reset() before stepping again")
        if not self.action_space.contains(int(action)):
            raise ValueError(f"action {action!r} is not a token id in [0, {self.scorer.vocab_size})")
        self._ids[self._length] = int(action)
        self._length += 1
        if self._length < self.scorer.prompt_length:
            return self._obs(), 0.0, False, False, {}
        texts, scores, logs = self.scorer.score(self._ids[None], self._batch)
        info = {"text": texts[0], **_scalar_logs(logs, row=0)}
        return self._obs(), float(scores[0]), True, False, info


class PromptVectorEnv(_OldTaskName, VectorEnv):
    """N prompts built in lock-step; the reward is called once with all N when they finish.

    Autoreset is ``next-step``: the step after the last token starts N new prompts (actions ignored).
    Every prompt of one round shares the same example batch.
    """

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int, reward: Reward | Callable, tokenizer, prompt_length: int = 5, *,
                 vocab_size: int | None = None, data: dict | None = None, examples_per_episode: int | None = None,
                 stratify_by: str | None = None):
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        self.scorer = _PromptScorer(reward, tokenizer, prompt_length, vocab_size, data, examples_per_episode,
                                    stratify_by)
        self.num_envs = num_envs
        self.single_action_space = spaces.Discrete(self.scorer.vocab_size)
        self.single_observation_space = _observation_space(self.scorer.vocab_size, prompt_length)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self._ids = np.zeros((num_envs, prompt_length), dtype=np.int64)
        self._length = 0
        self._batch: dict = {}
        self._needs_reset = True

    def _obs(self) -> dict:
        return {"token_ids": self._ids.copy(), "length": np.full(self.num_envs, self._length, dtype=np.int64)}

    @property
    def batch(self) -> dict:
        """The examples of the current round of prompts (every sub-environment's)."""
        return self._batch

    def _start(self) -> None:
        self._ids[:] = 0
        self._length = 0
        self._batch = self.scorer.batch(self.np_random)
        self._needs_reset = False

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._start()
        return self._obs(), {}

    def step(self, actions):
        zeros = np.zeros(self.num_envs, dtype=bool)
        if self._needs_reset:  # next-step autoreset after a finished round
            self._start()
            return self._obs(), np.zeros(self.num_envs), zeros, zeros.copy(), {}
        actions = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)
        if (actions < 0).any() or (actions >= self.scorer.vocab_size).any():
            raise ValueError(f"actions must be token ids in [0, {self.scorer.vocab_size}), got {actions.tolist()}")
        self._ids[:, self._length] = actions
        self._length += 1
        if self._length < self.scorer.prompt_length:
            return self._obs(), np.zeros(self.num_envs), zeros, zeros.copy(), {}
        texts, scores, logs = self.scorer.score(self._ids, self._batch)
        infos: dict[str, Any] = {"text": np.array(texts, dtype=object), "_text": ~zeros}
        for key in _scalar_logs(logs, row=0):
            value = logs[key]
            infos[key] = (np.array([float(v) for v in value]) if hasattr(value, "__len__")
                          else np.full(self.num_envs, float(value)))
            infos["_" + key] = ~zeros
        self._needs_reset = True
        return self._obs(), scores, ~zeros, zeros.copy(), infos
