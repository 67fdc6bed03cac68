"""Which prompt a run keeps: the best dev result, then (optionally) a re-selection at the end.

Every agent that learns discrete prompts meets candidates two ways: the greedy prompt it scores on the
dev split every few steps, and the prompts it samples in training, scored on training examples. The
dev split is small (32 sentences tell prompts a few examples apart by luck), so at the end of a run
the best few dev prompts and the best-scoring training samples are scored again, on the dev and
training examples together or on the held-out examples alone (:func:`held_out`), and the best of them
is kept. :class:`PromptSelection` holds that bookkeeping for the SQL trainer and the TRL agents
alike; the caller brings the scoring.

A *result* is a dict with at least ``text``, ``token_ids`` and ``reward`` (``accuracy`` when the
reward logs one, ``step``); a *score* function is ``score(token_ids [N, L], data) -> (texts, scores,
logs)``, a prompt scorer's signature, with ``logs["accuracy/per_prompt"]`` when accuracy is known.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

SELECT_BY = ("reward", "accuracy")
RESCORE_ON = ("dev+train", "held-out")
Score = Callable[[np.ndarray, dict], tuple]


def training_rows(dev: dict, train: dict) -> list[bool]:
    """For each dev row, whether the training columns hold the same row (compared on the columns both have)."""
    fields = [name for name in dev if name in train]
    seen = set(zip(*(train[name] for name in fields)))
    return [row in seen for row in zip(*(dev[name] for name in fields))]


def held_out(dev: dict | None, train: dict) -> dict | None:
    """The dev rows that are not training rows; None without dev, or when at least half of it repeats training
    rows (RLPrompt's 16-shot Subj files: dev.tsv is train.tsv), as so few held-out rows cannot rank prompts.

    A policy that has settled on a few prompts (``--replay-best``) has fitted them to the training examples,
    so a re-selection that counts those examples favours the prompts that fit them best."""
    if not dev:
        return None
    repeated = training_rows(dev, train)
    if sum(repeated) * 2 >= len(repeated):
        return None
    keep = [i for i, seen in enumerate(repeated) if not seen]
    return {name: [values[i] for i in keep] for name, values in dev.items()}


def rank(result: dict, select_by: str = "reward") -> tuple[float, ...]:
    """The figures that order results, highest first: the reward, or accuracy then reward (when it has one)."""
    if select_by == "accuracy" and "accuracy" in result:
        return result["accuracy"], result["reward"]
    return (result["reward"],)


class PromptSelection:
    """The best dev result so far, every distinct prompt scored on dev, and a tally of the training samples.

    ``rescore_top`` dev prompts and ``rescore_samples`` training samples take part in :meth:`reselect`;
    with ``rescore_samples`` 0 nothing is tallied (a long run would keep every sampled prompt for nothing)
    unless ``keep_samples`` asks for the tally anyway (a trainer that replays the best samples).
    """

    def __init__(self, select_by: str = "reward", rescore_top: int = 1, rescore_samples: int = 0, *,
                 keep_samples: bool = False):
        if select_by not in SELECT_BY:
            raise ValueError(f"select_by must be one of {SELECT_BY}, got {select_by!r}")
        self.select_by, self.rescore_top, self.rescore_samples = select_by, rescore_top, rescore_samples
        self.keep_samples = keep_samples or bool(rescore_samples)
        self.best: dict | None = None
        self.candidates: dict[tuple[int, ...], dict] = {}  # every distinct prompt scored on dev, by token ids
        # every distinct prompt sampled in training, by token ids: [sum of its raw scores, times sampled, last step]
        self.sampled: dict[tuple[int, ...], list] = {}

    @property
    def reselects(self) -> bool:
        """Whether the end of a run compares more than the best dev prompt."""
        return self.rescore_top > 1 or bool(self.rescore_samples)

    def rank(self, result: dict) -> tuple[float, ...]:
        return rank(result, self.select_by)

    # ------------------------------------------------------------------ during the run

    def observe(self, result: dict) -> bool:
        """Remember a dev result; True when it is the new best (strictly better: the earlier of equals stays)."""
        self.remember(result)
        if self.best is None or self.rank(result) > self.rank(self.best):
            self.best = result
            return True
        return False

    def remember(self, result: dict) -> None:
        """Keep a dev result among the candidates, the better of two results of the same prompt."""
        key = tuple(result["token_ids"])
        if key not in self.candidates or self.rank(result) > self.rank(self.candidates[key]):
            self.candidates[key] = result

    def tally(self, token_ids: Sequence, scores: Sequence, step: int) -> None:
        """Add a step's samples (token ids ``[N, L]``, raw scores ``[N]``) to their prompts' running scores."""
        if not self.keep_samples:
            return
        for ids, score in zip(_as_list(token_ids), _as_list(scores)):
            entry = self.sampled.setdefault(tuple(ids), [0.0, 0, 0])
            entry[0], entry[1], entry[2] = entry[0] + score, entry[1] + 1, step

    # ------------------------------------------------------------------ at the end

    def best_samples(self, count: int, score: Score, dev: dict, exclude=()) -> list[dict]:
        """The ``count`` sampled prompts with the best mean training score (ties: the more often sampled), not in
        ``exclude``, scored on ``dev``.

        On a task with several classes the policy keeps exploring, and its best prompts are often ones it
        sampled but never wrote greedily at a dev evaluation; their training scores say which to look at.
        """
        chosen = self.best_sampled(count, exclude)
        if not chosen:
            return []
        texts, scores, logs = score(np.array(chosen), dev)
        accuracy = logs.get("accuracy/per_prompt")
        return [{"step": self.sampled[ids][2], "text": str(texts[i]), "token_ids": list(ids),
                 "reward": float(scores[i]),
                 **({"accuracy": float(accuracy[i])} if accuracy is not None else {}),
                 "train_reward": self.mean_score(ids), "times_sampled": self.sampled[ids][1]}
                for i, ids in enumerate(chosen)]

    def best_sampled(self, count: int, exclude=()) -> list[tuple[int, ...]]:
        """The token ids of the ``count`` sampled prompts with the best mean training score (ties: the more often
        sampled), not in ``exclude``."""
        exclude = {tuple(ids) for ids in exclude}
        means = {ids: self.mean_score(ids) for ids in self.sampled if ids not in exclude}
        return sorted(means, key=lambda ids: (means[ids], self.sampled[ids][1]), reverse=True)[:count]

    def mean_score(self, ids: tuple[int, ...]) -> float:
        total, times, _ = self.sampled[ids]
        return total / times

    def reselect(self, score: Score, dev: dict, both: dict, on: str = "dev+train") -> dict | None:
        """The best of the ``rescore_top`` best distinct dev prompts and the ``rescore_samples`` best training
        samples, scored again on ``both`` (the examples named by ``on``: the dev and training examples together,
        or the held-out ones); the best dev result when there are fewer than two to compare.

        Each of these prompts has met many of those examples already, so a reward's memo makes this cheap.
        The chosen result keeps its dev figures and gains ``selection`` (what was compared, and on what).
        """
        ranked = sorted(self.candidates.values(), key=self.rank, reverse=True)[:self.rescore_top]
        if not ranked:
            return self.best
        samples = self.best_samples(self.rescore_samples, score, dev, exclude=[c["token_ids"] for c in ranked])
        pool = ranked + samples
        if len(pool) < 2:
            return self.best
        _, scores, logs = score(np.array([c["token_ids"] for c in pool]), both)
        accuracy = logs.get("accuracy/per_prompt")
        rescored = [{"text": c["text"], "token_ids": c["token_ids"], "source": "sampled" if i >= len(ranked) else "dev",
                     "dev_reward": c["reward"], "dev_accuracy": c.get("accuracy"), "reward": float(scores[i]),
                     **({"accuracy": float(accuracy[i])} if accuracy is not None else {})}
                    for i, c in enumerate(pool)]
        chosen = max(range(len(pool)), key=lambda i: self.rank(rescored[i]))
        examples = len(next(iter(both.values()))) if both else 0
        return {**pool[chosen], "selection": {"examples": examples, "on": on, "by": self.select_by,
                                                "dev_best": ranked[0]["text"], "candidates": rescored}}

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict:
        return {"best": self.best, "candidates": list(self.candidates.values()),
                "sampled": [[list(ids), *entry] for ids, entry in self.sampled.items()]}

    def load_state_dict(self, state: dict) -> None:
        """``state_dict``'s keys; older checkpoints without candidates or samples load with none."""
        self.best = state["best"]
        self.candidates = {tuple(c["token_ids"]): c for c in state.get("candidates", [])}
        self.sampled = {tuple(ids): list(entry) for ids, *entry in state.get("sampled", [])}


def _as_list(values) -> list:
    return values.tolist() if hasattr(values, "tolist") else list(values)
