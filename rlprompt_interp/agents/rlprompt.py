"""The RLPrompt agent: soft Q-learning of a discrete prompt, with composable rewards.

Python::

    from rlprompt_interp.agents.rlprompt import RLPromptAgent
    from rlprompt_interp.tasks import get_task

    task = get_task("sst-2", data_dir="../shared/data/few-shot")
    agent = RLPromptAgent(model="smollm2-135m", reward="gap=1,perplexity=0.01")
    learned = agent.fit(task, prompt_length=5, steps=300, output_dir="runs/sst2")

Command line: ``rlprompt-interp train --agent rlprompt --task sst-2 ... --reward gap=1,perplexity=0.01``, or a
recipe (``--recipe embedded-sst2``). Each option is a field of one of the configs below (policy,
soft Q-learning, reward; the models and the run's length are ``train``'s own), and its flag is made from it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..algorithms.trainer import SQLConfig, SQLTrainer
from ..checkpoints import CHECKPOINT_FILE
from ..config import AgentConfig, Config, ConfigError, DevConfig, ModelConfig, build_config, option, section
from ..models import LoadedModel, compute_record, load_lm, policy_for
from ..notices import warn
from ..policies import LMAdaptorPolicy, PolicyConfig
from ..prompts import LearnedPrompt
from ..rewards import FunctionReward, Perplexity, Reward, TaskGapReward, WeightedSum, load_function, perplexity_scorer
from ..rewards.classification import GAP_DEFAULTS
from ..selection import training_rows
from ..tasks import ClassificationTask
from .base import Agent

REWARD_NAMES = ("gap", "perplexity", "log-perplexity")
DEPRECATED_REWARD_NAMES = {"accuracy": "gap"}  # "accuracy" was the gap reward's name, not the accuracy


def parse_reward_spec(spec: str, *, quiet: bool = False) -> list[tuple[str, float]]:
    """``"gap=1,perplexity=0.01"`` -> ``[("gap", 1.0), ("perplexity", 0.01)]`` (old names: with a warning)."""
    terms = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, weight = item.partition("=")
        name = name.strip()
        if name in DEPRECATED_REWARD_NAMES:
            if not quiet:
                warn(f"the reward name {name!r} is deprecated (it is RLPrompt's probability-gap reward, not the "
                     f"accuracy); use {DEPRECATED_REWARD_NAMES[name]!r}")
            name = DEPRECATED_REWARD_NAMES[name]
        if name not in REWARD_NAMES:
            raise ValueError(f"unknown reward {name!r} in {spec!r}; choose from {list(REWARD_NAMES)} "
                             "(or pass your own function with --reward-fn module:function)")
        try:
            terms.append((name, float(weight) if sep else 1.0))
        except ValueError:
            raise ValueError(f"the coefficient of {name!r} in {spec!r} is not a number: {weight!r}") from None
    return terms


def build_reward(spec: str | Reward, task: ClassificationTask | None, task_lm: LoadedModel, *, scorer: str = "auto",
                 functions: Sequence[str] = (), dtype: str = "auto", gap: RewardConfig | None = None) -> Reward:
    """A weighted sum from a spec string plus ``module:function[=weight]`` terms (a Reward passes through); the
    gap reward's scale and class weighting are ``gap``'s (a ``RewardConfig``; when omitted, its defaults)."""
    gap = gap if gap is not None else RewardConfig()
    terms: list[tuple[float, Reward]] = []
    if isinstance(spec, Reward):
        terms.append((1.0, spec))
    else:
        for name, weight in parse_reward_spec(spec or ""):
            if name == "gap":
                if task is None:
                    raise ValueError("the gap reward needs a classification task")
                reward = TaskGapReward(task, task_lm, correct_coef=gap.correct_coef, incorrect_coef=gap.incorrect_coef,
                                       balance_classes=gap.balance_classes)
            else:
                reward = Perplexity(load_lm(scorer, role="scorer", dtype=dtype), log=name == "log-perplexity")
            terms.append((weight, reward))
    terms.extend(reward_function_terms(functions))
    if not terms:
        raise ConfigError("reward", NO_REWARD)
    return WeightedSum(terms)


NO_REWARD = "is empty and no --reward-fn is given: pass --reward gap=1, or --reward-fn my_module:my_function"


def parse_reward_function(item: str) -> tuple[str, float]:
    """``"my_module:score=0.5"`` -> ``("my_module:score", 0.5)``: checked on its own, before any module is
    imported or model loaded, so a typo costs no model load."""
    path, sep, weight = item.rpartition("=") if "=" in item else (item, "", "1")
    module, colon, function = path.partition(":")
    if not (module and colon and function):
        raise ConfigError("reward_fn", f"takes MODULE:FUNCTION[=WEIGHT], e.g. my_reward:score=0.5, got {item!r}")
    try:
        return path, float(weight)
    except ValueError:
        raise ConfigError("reward_fn", f"weight of {path!r} is not a number: {weight!r} in {item!r}") from None


def reward_function_terms(items: Sequence[str]) -> list[tuple[float, Reward]]:
    """``--reward-fn`` items as weighted rewards. The working folder joins the import path, as for
    ``python -m``, so ``my_reward:score`` finds ``./my_reward.py``; a module that does not import is a
    ``RewardError``, which ``train`` meets before loading a model."""
    if items and os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    terms = []
    for item in items:
        path, weight = parse_reward_function(item)
        terms.append((weight, FunctionReward(load_function(path), name=path.partition(":")[2])))
    return terms


def task_columns(task: ClassificationTask, split: str, limit: int | None = None) -> dict | None:
    """The split as columns ``{field: [...], "label": [...]}`` (the reward's batch; a task without labels, such as
    style transfer, gives its fields alone), or None when absent; ``limit``: a fixed random subset of that many."""
    try:
        data = task.load_split(split, limit=limit) if limit else task.load_split(split)
    except Exception:
        if split == "train":
            raise
        return None
    return {name: list(data[name]) for name in (*task.template.fields, "label") if name in data.column_names}


def training_splits(task: ClassificationTask, dev_limit: int | None = None) -> tuple[dict, dict | None]:
    """The task's training and dev columns (``task_columns``), with a warning when most dev examples are training
    examples: RLPrompt's 16-shot Subj files repeat the training split as dev, so a prompt chosen on dev there is
    chosen on the sentences it was trained on, and nothing held out tells a prompt that fits them from one that
    generalises."""
    train, dev = task_columns(task, "train"), task_columns(task, "dev", limit=dev_limit)
    if dev:
        repeated, size = sum(training_rows(dev, train)), len(next(iter(dev.values())))
        if repeated * 2 >= size:
            warnings.warn(f"{repeated} of the {size} dev examples of task {task.name!r} are training examples: the "
                          "prompt kept on dev is kept on training data, with nothing held out (give a dev "
                          "split of other examples to choose on held-out data)", UserWarning, stacklevel=2)
    return train, dev


def task_token_ids(task_lm: LoadedModel, text: str, policy_ids: list[int]) -> list[int]:
    """The prompt as task-LM tokens: the policy's own ids when they decode to the same text."""
    if task_lm.tokenizer.decode(policy_ids) == text:
        return list(policy_ids)
    return task_lm.tokenizer.encode(text, add_special_tokens=False)


@dataclass
class RewardConfig(Config):
    """What a prompt is scored by: named terms with weights, your own functions, the gap reward's scale."""

    reward: str = option("gap=1", "weighted terms, e.g. gap=1,perplexity=0.01 (names: gap, RLPrompt's "
                                  "classification gap reward; perplexity; log-perplexity)")
    reward_fn: list[str] = option([], "add your own f(prompts: list[str], **batch) -> list[float] from "
                                      "MODULE.py (the working folder is on the import path), times WEIGHT "
                                      "(default 1); repeatable. --reward '' leaves it alone",
                                  metavar="MODULE:FUNCTION[=WEIGHT]", append=True)
    log_perplexity: bool = option(False, "score perplexity terms as minus log-perplexity instead of minus perplexity")
    correct_coef: float = option(GAP_DEFAULTS["correct_coef"], "gap reward scale when correct", at_least=0)
    incorrect_coef: float = option(GAP_DEFAULTS["incorrect_coef"], "gap reward scale when wrong", at_least=0)
    balance_classes: bool = option(GAP_DEFAULTS["balance_classes"], "score a prompt's training batch by the mean over classes of each "
                                          "class's mean gap, not the mean over examples")

    def check(self) -> None:
        try:
            terms = parse_reward_spec(self.reward or "", quiet=True)
        except ValueError as error:
            raise ConfigError("reward", f"{self.reward!r} is not a reward: {error}") from None
        for item in self.reward_fn:
            parse_reward_function(item)
        if not terms and not self.reward_fn:
            raise ConfigError("reward", NO_REWARD)

    def build(self, task: ClassificationTask | None, task_lm: LoadedModel, *, scorer: str, dtype: str,
              reward: Reward | None = None) -> Reward:
        """The reward these options describe (``reward``: a Reward object in place of the named terms)."""
        return build_reward(reward or self.spec(), task, task_lm, scorer=scorer, functions=self.reward_fn, dtype=dtype,
                            gap=self)

    def spec(self) -> str:
        """The reward terms, with ``--log-perplexity`` applied and old names replaced."""
        terms = parse_reward_spec(self.reward or "")
        if self.log_perplexity:
            terms = [("log-perplexity" if name == "perplexity" else name, weight) for name, weight in terms]
        return ",".join(f"{name}={weight!r}" for name, weight in terms)


@dataclass
class RLPromptConfig(AgentConfig):
    """Every option of the RLPrompt agent, one config per concern; ``replace`` changes them by field name."""

    models: ModelConfig = section(ModelConfig, "models")
    policy: PolicyConfig = section(PolicyConfig, "--agent rlprompt: the policy")
    sql: SQLConfig = section(SQLConfig, "--agent rlprompt: soft Q-learning")
    reward: RewardConfig = section(RewardConfig, "the reward")
    dev: DevConfig = section(DevConfig, "--agent rlprompt: the dev split")

    RENAMED = {"reward_functions": ("reward_fn", list),
               "max_seconds": ("max_minutes", lambda seconds: None if seconds is None else seconds / 60)}


class RLPromptAgent(Agent):
    """RLPrompt: frozen policy LM + MLP, soft Q-learning, any Reward (default: the classification gap reward).

    ``RLPromptAgent(config)`` or ``RLPromptAgent(**options)`` with any field of its configs
    (``RLPromptConfig``: models, policy, soft Q-learning, reward); ``reward`` may also be a Reward object.
    """

    name = "rlprompt"
    config_class = RLPromptConfig
    default_steps = None  # SQLTrainer's time budget (DEFAULT_BUDGET_MINUTES) when neither --steps nor --max-minutes

    def __init__(self, config: RLPromptConfig | None = None, *, reward: str | Reward | None = None, **options):
        if isinstance(reward, Reward):
            self.reward_object = reward
        else:
            self.reward_object = None
            if reward is not None:
                options["reward"] = reward
        self.config = build_config(RLPromptConfig, config, options)

    @property
    def quiet(self) -> bool:
        return self.config.sql.quiet

    @property
    def dtype(self) -> str:
        """The frozen models' dtype as given (``auto``...), as every agent reports it."""
        return self.config.models.dtype

    def build(self, task: ClassificationTask, *, prompt_length: int, steps: int | None, seed: int = 0,
              output_dir: str | Path | None = None) -> SQLTrainer:
        """The trainer (policy, reward, data) this agent would run; ``fit`` runs it."""
        models, rewards = self.config.models, self.config.reward
        task_lm = load_lm(models.model, role="task", dtype=models.dtype)
        policy_lm = load_lm(self.config.policy.policy_model or policy_for(task_lm), role="policy", dtype=models.dtype)
        reward = rewards.build(task, task_lm, scorer=models.scorer, dtype=models.dtype, reward=self.reward_object)
        policy = LMAdaptorPolicy(policy_lm, self.config.policy.resolved(task))
        config = dataclasses.replace(self.config.sql, prompt_length=prompt_length, steps=steps, seed=seed)
        train_data, dev_data = training_splits(task, self.config.dev_limit)
        trainer = SQLTrainer(policy, reward, config, train_data=train_data, dev_data=dev_data, output_dir=output_dir,
                             method=self.name)
        trainer.task_lm = task_lm
        return trainer

    def fit(self, task: ClassificationTask, *, prompt_length: int, steps: int | None, seed: int = 0,
            output_dir: str | Path | None = None, resume: bool = False, **kwargs) -> LearnedPrompt:
        if kwargs:
            raise TypeError(f"RLPromptAgent.fit got unknown arguments {sorted(kwargs)}")
        trainer = self.build(task, prompt_length=prompt_length, steps=steps, seed=seed, output_dir=output_dir)
        trainer.on_log = self.on_log
        checkpoint = Path(output_dir) / CHECKPOINT_FILE if output_dir is not None else None
        if resume:
            if checkpoint is None:
                raise ValueError("resume=True needs the output_dir that holds the checkpoint")
            if trainer.resume():
                print(f"resuming from {checkpoint} at step {trainer.step}")
            else:
                print(f"no checkpoint in {output_dir}; starting from step 0")
        elif checkpoint is not None and checkpoint.exists():
            raise FileExistsError(f"{output_dir} already holds a checkpoint; pass --resume to continue it, "
                                  "or choose a new --output")
        if output_dir is not None:
            trainer.on_best = lambda best: self._learned(trainer, task, best).save(Path(output_dir) / "best")
        learned = self._learned(trainer, task, trainer.train(progress=not self.quiet))
        if output_dir is not None:
            learned.save(output_dir)
        return learned

    @classmethod
    def add_deprecated_arguments(cls, parser) -> None:
        add_deprecated_arguments(parser)

    def _learned(self, trainer: SQLTrainer, task: ClassificationTask, best: dict) -> LearnedPrompt:
        scores = {f"dev_{k}": v for k, v in best.items() if k not in ("text", "token_ids", "step", "selection")}
        scores["best_step"] = best["step"]
        config = {**self.config.to_dict(), "sql": trainer.config.to_dict()}
        provenance = {"method": self.name, "model": trainer.task_lm.spec, "task_model": trainer.task_lm.spec,
                      "policy_model": trainer.policy.lm.spec, "task": task.name, "seed": trainer.config.seed,
                      "template": task.template.text, "verbalizers": list(getattr(task, "verbalizers", ())),
                      "label_names": list(getattr(task, "label_names", ())), "reward": repr(trainer.reward),
                      "scorer_model": perplexity_scorer(trainer.reward), "condition": trainer.policy.condition,
                      "policy_token_ids": best["token_ids"], "config": config, "selection": best.get("selection"),
                      "computed_with": compute_record(trainer.task_lm.dtype, trainer.task_lm.device)}
        return LearnedPrompt(text=best["text"], token_ids=task_token_ids(trainer.task_lm, best["text"], best["token_ids"]),
                             scores=scores, curve=list(trainer.curve), provenance=provenance)


# --------------------------------------------------------------------------- command line


def add_deprecated_arguments(parser) -> None:
    """The old four-number spelling of --reward-range and --shaped-range (``train`` adds it for this agent)."""
    group = parser.sections["sql"].group
    group.add_argument("--reward-shaping", type=float, nargs=4, action=_RewardShaping, help=argparse.SUPPRESS,
                       default=argparse.SUPPRESS)
    group.add_argument("--no-reward-shaping", nargs=0, action=_RewardShaping, help=argparse.SUPPRESS,
                       default=argparse.SUPPRESS)


class _RewardShaping(argparse.Action):
    """The old ``--reward-shaping OLD_MIN OLD_MAX NEW_MIN NEW_MAX`` / ``--no-reward-shaping`` (deprecated)."""

    def __call__(self, parser, namespace, values, option_string=None):
        if values:
            warn("--reward-shaping is deprecated; use --reward-range OLD_MIN OLD_MAX --shaped-range NEW_MIN NEW_MAX")
            namespace.reward_range, namespace.shaped_range = tuple(values[:2]), tuple(values[2:])
        else:
            warn("--no-reward-shaping is deprecated; put reward_range: null in a --config file")
            namespace.reward_range = None
