"""The RLPrompt agent: soft Q-learning of a discrete prompt, with composable rewards.

Python::

    from rlprompt_interp.agents.rlprompt import RLPromptAgent
    from rlprompt_interp.tasks import get_task

    task = get_task("sst-2", data_dir="../shared/data/few-shot")
    agent = RLPromptAgent(model="smollm2-135m", reward="accuracy=1,perplexity=0.01")
    learned = agent.fit(task, prompt_length=5, steps=300, output_dir="runs/sst2")

Command line: ``rlprompt-interp train --agent rlprompt --task sst-2 ... --reward accuracy=1,perplexity=0.01``.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from ..algorithms.trainer import CHECKPOINT_FILE, SQLConfig, SQLTrainer
from ..models import LoadedModel, compute_record, load_lm
from ..policies import ACTION_SPACES, LMAdaptorPolicy
from ..prompts import LearnedPrompt
from ..rewards import ClassificationReward, FunctionReward, Perplexity, Reward, WeightedSum, load_function
from ..tasks import ClassificationTask
from .base import Agent

REWARD_NAMES = ("accuracy", "perplexity", "log-perplexity")


def parse_reward_spec(spec: str) -> list[tuple[str, float]]:
    """``"accuracy=1,perplexity=0.01"`` -> ``[("accuracy", 1.0), ("perplexity", 0.01)]``."""
    terms = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, weight = item.partition("=")
        name = name.strip()
        if name not in REWARD_NAMES:
            raise ValueError(f"unknown reward {name!r} in {spec!r}; choose from {list(REWARD_NAMES)} "
                             "(or pass your own function with --reward-fn module:function)")
        try:
            terms.append((name, float(weight) if sep else 1.0))
        except ValueError:
            raise ValueError(f"the coefficient of {name!r} in {spec!r} is not a number: {weight!r}") from None
    return terms


def build_reward(spec: str | Reward, task: ClassificationTask | None, task_lm: LoadedModel, *, scorer: str = "auto",
                 functions: Sequence[str] = (), correct_coef: float = 200.0, incorrect_coef: float = 180.0,
                 dtype: str = "auto") -> Reward:
    """A weighted sum from a spec string plus ``module:function[=weight]`` terms (a Reward passes through)."""
    terms: list[tuple[float, Reward]] = []
    if isinstance(spec, Reward):
        terms.append((1.0, spec))
    else:
        for name, weight in parse_reward_spec(spec or ""):
            if name == "accuracy":
                if task is None:
                    raise ValueError("the accuracy reward needs a classification task")
                reward = ClassificationReward(task, task_lm, correct_coef=correct_coef, incorrect_coef=incorrect_coef)
            else:
                reward = Perplexity(load_lm(scorer, role="scorer", dtype=dtype), log=name == "log-perplexity")
            terms.append((weight, reward))
    if functions and os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # --reward-fn my_module:fn finds my_module.py in the working folder
    for item in functions:
        path, sep, weight = item.rpartition("=") if "=" in item else (item, "", "1")
        terms.append((float(weight), FunctionReward(load_function(path), name=path.partition(":")[2])))
    if not terms:
        raise ValueError("no reward given: pass --reward (e.g. accuracy=1) or --reward-fn module:function")
    return WeightedSum(terms)


def task_columns(task: ClassificationTask, split: str) -> dict | None:
    """The split as columns ``{field: [...], "label": [...]}`` (the reward's batch), or None when absent."""
    try:
        data = task.load_split(split)
    except Exception:
        if split == "train":
            raise
        return None
    return {name: list(data[name]) for name in (*task.template.fields, "label")}


def task_token_ids(task_lm: LoadedModel, text: str, policy_ids: list[int]) -> list[int]:
    """The prompt as task-LM tokens: the policy's own ids when they decode to the same text."""
    if task_lm.tokenizer.decode(policy_ids) == text:
        return list(policy_ids)
    return task_lm.tokenizer.encode(text, add_special_tokens=False)


class RLPromptAgent(Agent):
    """RLPrompt: frozen policy LM + MLP, soft Q-learning, any Reward (default: the classification gap reward)."""

    name = "rlprompt"

    def __init__(self, *, model: str = "auto", policy_model: str | None = None, scorer: str = "auto",
                 reward: str | Reward = "accuracy=1", reward_functions: Sequence[str] = (),
                 prompts_per_step: int = 16, examples_per_step: int = 16, lr: float | None = None,
                 top_k: int | None = 256, top_p: float | None = None, fluent_top_k: int | None = None,
                 prior_weight: float = 0.0, action_space: str = "all", no_repeat: int = 0,
                 explore_fraction: float = 0.0, explore_top_k: int = 20, init_prompt: str | None = None,
                 mlp_width: int = 2048, condition: str | None = None,
                 loss: str = "mix",
                 target_update: str = "polyak", target_rate: float = 1e-3, target_period: int = 100,
                 zscore: bool = True, reward_range: tuple[float, float] | None = (0.0, 1.0),
                 shaped_range: tuple[float, float] = (0.0, 5.0), max_grad_norm: float = 5.0,
                 correct_coef: float = 200.0, incorrect_coef: float = 180.0, eval_every: int = 50,
                 checkpoint_every: int | None = None, select_by: str = "reward", max_seconds: float | None = None,
                 dtype: str = "auto", quiet: bool = False):
        self.model, self.policy_model, self.scorer = model, policy_model, scorer
        self.reward, self.reward_functions = reward, list(reward_functions)
        self.policy_options = dict(mlp_width=mlp_width, condition=condition, top_k=top_k, top_p=top_p,
                                   fluent_top_k=fluent_top_k, prior_weight=prior_weight, action_space=action_space,
                                   no_repeat=no_repeat, explore_fraction=explore_fraction, explore_top_k=explore_top_k)
        self.sql_options = dict(prompts_per_step=prompts_per_step, examples_per_step=examples_per_step,
                                lr=5e-5 if lr is None else lr, loss=loss, target_update=target_update,
                                target_rate=target_rate, target_period=target_period, zscore=zscore,
                                reward_range=reward_range, shaped_range=shaped_range, max_grad_norm=max_grad_norm,
                                eval_every=eval_every, checkpoint_every=checkpoint_every, select_by=select_by,
                                init_prompt=init_prompt, max_seconds=max_seconds)
        self.correct_coef, self.incorrect_coef = correct_coef, incorrect_coef
        self.dtype, self.quiet = dtype, quiet

    def build(self, task: ClassificationTask, *, prompt_length: int, steps: int, seed: int = 0,
              output_dir: str | Path | None = None) -> SQLTrainer:
        """The trainer (policy, reward, data) this agent would run; ``fit`` runs it."""
        task_lm = load_lm(self.model, role="task", dtype=self.dtype)
        policy_lm = load_lm(self.policy_model or self.model, role="policy", dtype=self.dtype)
        reward = build_reward(self.reward, task, task_lm, scorer=self.scorer, functions=self.reward_functions,
                              correct_coef=self.correct_coef, incorrect_coef=self.incorrect_coef, dtype=self.dtype)
        policy = LMAdaptorPolicy(policy_lm, **self.policy_options)
        config = SQLConfig(prompt_length=prompt_length, steps=steps, seed=seed, **self.sql_options)
        trainer = SQLTrainer(policy, reward, config, train_data=task_columns(task, "train"),
                             dev_data=task_columns(task, "dev"), output_dir=output_dir)
        trainer.task_lm = task_lm
        return trainer

    def fit(self, task: ClassificationTask, *, prompt_length: int, steps: int, seed: int = 0,
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

    def _learned(self, trainer: SQLTrainer, task: ClassificationTask, best: dict) -> LearnedPrompt:
        scores = {f"dev_{k}": v for k, v in best.items() if k not in ("text", "token_ids", "step")}
        scores["best_step"] = best["step"]
        provenance = {"method": self.name, "model": trainer.task_lm.spec, "task_model": trainer.task_lm.spec,
                      "policy_model": trainer.policy.lm.spec, "task": task.name, "seed": trainer.config.seed,
                      "template": task.template.text, "verbalizers": list(task.verbalizers),
                      "reward": repr(trainer.reward), "policy_token_ids": best["token_ids"],
                      "config": {**_plain(asdict(trainer.config)), **self.policy_options},
                      "computed_with": compute_record(trainer.task_lm.dtype, trainer.task_lm.device)}
        return LearnedPrompt(text=best["text"], token_ids=task_token_ids(trainer.task_lm, best["text"], best["token_ids"]),
                             scores=scores, curve=list(trainer.curve), provenance=provenance)


def _plain(config: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}


# --------------------------------------------------------------------------- command line


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--policy-model", help="policy LM (when omitted: the task LM, --model)")
    group.add_argument("--prompts-per-step", type=int, default=16)
    group.add_argument("--examples-per-step", type=int, default=16, help="training examples scored per step")
    group.add_argument("--reward", default="accuracy=1", type=_reward_spec,
                       help="weighted terms, e.g. accuracy=1,perplexity=0.01 (names: accuracy, perplexity, "
                            "log-perplexity)")
    group.add_argument("--reward-fn", action="append", default=[], metavar="MODULE:FUNCTION[=WEIGHT]",
                       help="add your own f(prompts: list[str], **batch) -> list[float] (repeatable)")
    group.add_argument("--log-perplexity", action="store_true",
                       help="score perplexity terms as minus log-perplexity instead of minus perplexity")
    group.add_argument("--fluent-top-k", type=int, help="only tokens in the top-k of the policy LM's own distribution")
    group.add_argument("--lm-prior", type=float, default=0.0, metavar="BETA",
                       help="Q-values start as BETA * log p_LM (soft Q-learning with a KL penalty towards the "
                            "policy LM); 0 = RLPrompt's uniform start")
    group.add_argument("--action-space", default="all", choices=list(ACTION_SPACES),
                       help="tokens the policy may write: all, whole English words, or words and punctuation")
    group.add_argument("--no-repeat", type=int, default=0, metavar="K",
                       help="a token may not repeat any of the previous K tokens (1: no immediate repetition)")
    group.add_argument("--lm-explore", type=float, default=0.0, metavar="FRACTION",
                       help="share of each step's prompts written by an LM-guided behaviour policy (uniform over "
                            "the policy LM's top tokens, --lm-explore-top-k); the action space stays unconstrained")
    group.add_argument("--lm-explore-top-k", type=int, default=20, metavar="K")
    group.add_argument("--init-prompt", metavar="TEXT",
                       help="warm start: fit the policy first so that its greedy prompt begins with TEXT")
    group.add_argument("--top-k", type=int, default=256, help="sample from the top-k tokens (0: all)")
    group.add_argument("--top-p", type=float, help="nucleus sampling instead of top-k")
    group.add_argument("--mlp-width", type=int, default=2048)
    group.add_argument("--condition", help="the text the policy writes the prompt after (when omitted: its BOS/EOS token)")
    group.add_argument("--sql-loss", default="mix",
                       choices=["mix", "single", "single_reversed", "multi", "multi_reversed"])
    group.add_argument("--target-update", default="polyak", choices=["polyak", "copy"])
    group.add_argument("--target-rate", type=float, default=1e-3, help="Polyak rate of the target network")
    group.add_argument("--target-period", type=int, default=100, help="steps between copies (--target-update copy)")
    group.add_argument("--no-zscore", dest="zscore", action="store_false", help="no z-scores of each step's rewards")
    group.add_argument("--reward-shaping", type=float, nargs=4, default=[0.0, 1.0, 0.0, 5.0],
                       metavar=("OLD_MIN", "OLD_MAX", "NEW_MIN", "NEW_MAX"),
                       help="linear map of the (z-scored) reward")
    group.add_argument("--no-reward-shaping", dest="reward_shaping", action="store_const", const=None)
    group.add_argument("--max-grad-norm", type=float, default=5.0)
    group.add_argument("--correct-coef", type=float, default=200.0, help="gap reward scale when correct")
    group.add_argument("--incorrect-coef", type=float, default=180.0, help="gap reward scale when wrong")
    group.add_argument("--select-by", default="reward", choices=["reward", "accuracy"],
                       help="the dev figure that picks the best prompt")
    group.add_argument("--checkpoint-every", type=int, help="steps between checkpoints (when omitted: --eval-every)")


def _reward_spec(text: str) -> str:
    """Check ``--reward`` while parsing, so a typo is a usage error, not a traceback."""
    try:
        parse_reward_spec(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def from_cli_args(args: argparse.Namespace) -> RLPromptAgent:
    reward = args.reward
    if args.log_perplexity:
        reward = ",".join(t.replace("perplexity", "log-perplexity") if t.strip().startswith("perplexity") else t
                          for t in reward.split(","))
    shaping = args.reward_shaping
    return RLPromptAgent(
        model=args.model, policy_model=args.policy_model, scorer=args.scorer, reward=reward,
        reward_functions=args.reward_fn, prompts_per_step=args.prompts_per_step,
        examples_per_step=args.examples_per_step, lr=args.lr, top_k=None if args.top_p else (args.top_k or None),
        top_p=args.top_p, fluent_top_k=args.fluent_top_k, prior_weight=args.lm_prior, action_space=args.action_space,
        no_repeat=args.no_repeat, explore_fraction=args.lm_explore, explore_top_k=args.lm_explore_top_k,
        init_prompt=args.init_prompt, mlp_width=args.mlp_width, condition=args.condition, loss=args.sql_loss,
        target_update=args.target_update, target_rate=args.target_rate, target_period=args.target_period,
        zscore=args.zscore, reward_range=tuple(shaping[:2]) if shaping else None,
        shaped_range=tuple(shaping[2:]) if shaping else (0.0, 1.0), max_grad_norm=args.max_grad_norm,
        correct_coef=args.correct_coef, incorrect_coef=args.incorrect_coef, eval_every=args.eval_every,
        checkpoint_every=args.checkpoint_every, select_by=args.select_by,
        max_seconds=args.max_minutes * 60 if args.max_minutes else None, dtype=args.dtype, quiet=args.quiet)
