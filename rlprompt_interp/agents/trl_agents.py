"""GRPO and RLOO through TRL: the policy LM itself learns to write the prompt.

Where RLPrompt keeps the policy LM frozen and trains an MLP on its hidden states with soft
Q-learning, these agents hand the policy LM to TRL's ``GRPOTrainer`` / ``RLOOTrainer``, which
train it (a peft LoRA adapter by default, every weight with ``full_finetune=True``) to continue a
fixed instruction (``condition``) with an L-token prompt. The rewards are RLPrompt's (through
:class:`~rlprompt_interp.rewards.TRLReward`): each step samples one group of ``prompts_per_step``
prompts, scores them on the same ``examples_per_step`` training examples, and TRL turns the
group's rewards into advantages (GRPO: z-scores within the group; RLOO: leave-one-out baselines).

Completions become prompts this way: generation is forced to exactly L tokens (``min_new_tokens``
= ``max_completion_length`` = L) and every special token (EOS, padding, BOS, chat markers) is
suppressed, so a prompt is always L ordinary tokens, like RLPrompt's; its text is the tokens
decoded. The suppression acts at sampling time only (like TRL's ``top_k``), so the loss sees the
unrestricted distribution; the suppressed tokens just never get sampled.

Every ``eval_every`` steps (and at the end) the greedy completion is scored on the dev split; the
best one is the learned prompt, as the RLPrompt agent keeps it. Checkpoints are the HF Trainer's
(``output_dir/trainer/checkpoint-N``, plus the dev results in ``rlprompt_interp_state.json``), so
``resume=True`` continues through ``resume_from_checkpoint``. Devices and several processes go
through accelerate, as TRL does.

Python::

    from rlprompt_interp.agents import get_agent
    agent = get_agent("grpo", model="smollm2-135m", reward="gap=1,perplexity=0.01")
    learned = agent.fit(task, prompt_length=5, steps=200, output_dir="runs/grpo")

Command line: ``rlprompt-interp train --agent grpo --task sst-2 ... --lora-rank 16 --kl-beta 0.01``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import json
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import torch
from transformers import GenerationConfig, TrainerCallback

from ..atomic import write_json_atomic
from ..config import ConfigError, config_from_args
from ..models import LoadedModel, compute_record, default_device, load_lm, policy_for
from ..policies import AUTO_CONDITION
from ..prompts import LearnedPrompt
from ..rewards import PromptBatch, Reward, TRLReward, perplexity_scorer, term_scores
from ..tasks import ClassificationTask
from .base import Agent
from .rlprompt import RewardConfig, build_reward, task_columns, task_token_ids

TRAINER_DIR = "trainer"  # the HF Trainer's output_dir inside the agent's output_dir
STATE_FILE = "rlprompt_interp_state.json"  # dev results, curve and time spent, inside each checkpoint
DATASET_ROWS = 1000  # copies of the instruction in the training set: one per step, epochs cycle through them


def default_condition(task: ClassificationTask) -> str:
    """An instruction that says what the prompt is for: the answers the task LM must pick between."""
    answers = " or ".join(repr(v.strip()) for v in task.verbalizers)
    return f"Write a short instruction that makes a reader answer {answers}.\nInstruction:"


def last_checkpoint(trainer_dir: str | Path) -> str | None:
    """The newest ``checkpoint-N`` folder of an HF Trainer output folder, or None."""
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(trainer_dir)) if Path(trainer_dir).is_dir() else None


class DevEvaluation(TrainerCallback):
    """Scores the greedy prompt on dev every ``eval_every`` steps, keeps the best and the per-step curve,
    stops training after ``max_seconds`` (counted over resumes), and saves all of it with each checkpoint."""

    def __init__(self, reward: Reward, data: dict, condition_ids: list[int], prompt_length: int, tokenizer,
                 *, eval_every: int, select_by: str = "reward", max_seconds: float | None = None,
                 quiet: bool = False, on_best=None):
        self.reward, self.data, self.condition_ids = reward, data, condition_ids
        self.tokenizer, self.eval_every, self.select_by = tokenizer, eval_every, select_by
        self.max_seconds, self.quiet, self.on_best = max_seconds, quiet, on_best
        self.generation = GenerationConfig(do_sample=False, max_new_tokens=prompt_length,
                                           min_new_tokens=prompt_length, suppress_tokens=suppressed_ids(tokenizer),
                                           pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        self.trainer = None  # set once the trainer exists: the greedy prompt comes from its (unwrapped) model
        self.best: dict | None = None
        self.curve: list[dict] = []
        self.elapsed = 0.0  # training seconds before this process (a resumed run)
        self.started: float | None = None
        self.evaluated_step = -1
        self._pending: dict = {}

    # ------------------------------------------------------------------ the greedy prompt

    @torch.no_grad()
    def greedy_prompt(self) -> tuple[str, list[int]]:
        model = self.trainer.accelerator.unwrap_model(self.trainer.model)
        training = model.training
        model.eval()
        ids = torch.tensor([self.condition_ids], device=model.device)
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=self.generation)
        model.train(training)
        tokens = out[0, ids.shape[1]:].tolist()
        return self.tokenizer.decode(tokens), tokens

    def evaluate(self, step: int) -> dict:
        text, ids = self.greedy_prompt()
        out = self.reward(PromptBatch([text], [ids]), self.data)
        result = {"step": step, "text": text, "token_ids": ids, "reward": float(out.scores[0])}
        result.update({k: float(v) for k, v in out.logs.items()
                       if isinstance(v, (int, float)) and not k.startswith("time/")})  # timings differ run to run
        self.evaluated_step = step
        main = self.trainer.accelerator.is_main_process  # every process evaluates (they agree); one writes
        if self._better(result):
            self.best = result
            if self.on_best is not None and main:
                self.on_best(result)
        if not self.quiet and main:
            keys = ("reward", *term_scores(result), "accuracy", "perplexity")
            brief = " ".join(f"{k}={result[k]:.4g}" for k in keys if k in result)
            print(f"step {step}: dev {brief} {text!r}  best {self.best['text']!r}", flush=True)
        return result

    def _better(self, candidate: dict) -> bool:
        if self.best is None:
            return True
        if self.select_by == "accuracy" and "accuracy" in candidate:
            return (candidate["accuracy"], candidate["reward"]) > (self.best["accuracy"], self.best["reward"])
        return candidate["reward"] > self.best["reward"]

    def finish(self, step: int) -> dict:
        """The best dev result, evaluating the final greedy prompt first if no evaluation saw it."""
        if self.evaluated_step != step and (self.best is None or self.best["step"] != step):
            dev = self.evaluate(step)
            self.curve.append({"step": step, **_dev_columns(dev), "time": self.seconds()})
        return self.best

    # ------------------------------------------------------------------ time and state

    def seconds(self) -> float:
        return self.elapsed + (time.time() - self.started if self.started is not None else 0.0)

    def state(self) -> dict:
        return {"best": self.best, "curve": self.curve, "elapsed": self.seconds(),
                "evaluated_step": self.evaluated_step}

    def load(self, checkpoint: str | Path) -> None:
        path = Path(checkpoint) / STATE_FILE
        if path.is_file():
            state = json.loads(path.read_text())
            self.best, self.curve, self.elapsed = state["best"], state["curve"], state["elapsed"]
            self.evaluated_step = state["evaluated_step"]

    # ------------------------------------------------------------------ trainer events

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.time()

    def on_step_end(self, args, state, control, **kwargs):
        step = state.global_step
        out_of_time = self.max_seconds is not None and self.seconds() >= self.max_seconds
        if out_of_time:
            control.should_training_stop = True
            control.should_save = args.save_strategy != "no"
        if (self.eval_every and step % self.eval_every == 0) or step >= state.max_steps or out_of_time:
            self._pending = _dev_columns(self.evaluate(step))

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "train_runtime" in logs:  # the end-of-training summary, not a step
            return
        numbers = {k: v for k, v in logs.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        self.curve.append({"step": state.global_step, **numbers, **self._pending, "time": self.seconds()})
        self._pending = {}

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            write_json_atomic(Path(args.output_dir) / f"checkpoint-{state.global_step}" / STATE_FILE, self.state())


def _dev_columns(dev: dict) -> dict:
    return {f"dev/{k}": v for k, v in dev.items() if k not in ("step", "token_ids")}


def suppressed_ids(tokenizer) -> list[int]:
    """Token ids a prompt never holds: every special token of the policy's tokenizer."""
    return sorted(set(tokenizer.all_special_ids) | ({tokenizer.eos_token_id} - {None}))


class TRLPromptAgent(Agent):
    """A TRL trainer (GRPO or RLOO) fine-tunes the policy LM to write the prompt; see the module docstring.

    ``trl_options`` sets any other field of the trainer's config (``GRPOConfig`` / ``RLOOConfig``),
    e.g. ``{"loss_type": "grpo", "top_k": 256}``. ``lr`` defaults to 1e-4 for LoRA and 1e-5 for
    full fine-tuning; ``beta`` (the KL coefficient) to the trainer's own default (GRPO 0, RLOO 0.05).
    """

    name = "trl"
    trainer_name = ""  # "GRPOTrainer" / "RLOOTrainer" in trl
    config_name = ""
    EVAL_EVERY = 50  # steps between dev evaluations when --eval-every is not given

    def __init__(self, *, model: str = "auto", policy_model: str | None = None, scorer: str = "auto",
                 reward: str | Reward = "gap=1", reward_functions: Sequence[str] = (),
                 prompts_per_step: int = 16, examples_per_step: int = 16, lr: float | None = None,
                 condition: str | None = None, full_finetune: bool = False, lora_rank: int = 16,
                 lora_alpha: float = 32.0, lora_dropout: float = 0.0,
                 lora_target_modules: Sequence[str] | str | None = None,
                 beta: float | None = None, temperature: float = 1.0, eval_every: int = EVAL_EVERY,
                 checkpoint_every: int | None = None, select_by: str = "reward", max_seconds: float | None = None,
                 report_to: str | Sequence[str] = "none", trl_options: dict | None = None,
                 correct_coef: float = 200.0, incorrect_coef: float = 180.0, dtype: str = "auto", quiet: bool = False):
        if prompts_per_step < 2:
            raise ConfigError("prompts_per_step", f"must be at least 2 for --agent {self.name}: each step's prompts "
                                                  f"are one group, scored against each other; got {prompts_per_step}")
        if select_by not in ("reward", "accuracy"):
            raise ValueError(f"select_by must be 'reward' or 'accuracy', got {select_by!r}")
        self.model, self.policy_model, self.scorer = model, policy_model, scorer
        self.reward, self.reward_functions = reward, list(reward_functions)
        self.prompts_per_step, self.examples_per_step = prompts_per_step, examples_per_step
        self.lr = lr if lr is not None else (1e-5 if full_finetune else 1e-4)
        self.condition, self.full_finetune = condition, full_finetune
        self.lora = dict(r=lora_rank, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
                         target_modules=lora_target_modules)
        self.beta, self.temperature = beta, temperature
        self.eval_every, self.checkpoint_every, self.select_by = eval_every, checkpoint_every, select_by
        self.max_seconds, self.report_to = max_seconds, report_to
        self.trl_options = dict(trl_options or {})
        check_trl_options(self.config_type(), self.trl_options)
        self.correct_coef, self.incorrect_coef = correct_coef, incorrect_coef
        self.dtype, self.quiet = dtype, quiet

    # ------------------------------------------------------------------ TRL classes

    def config_type(self):
        import trl

        return getattr(trl, self.config_name)

    def trainer_type(self):
        import trl

        return getattr(trl, self.trainer_name)

    def trainer_defaults(self) -> dict:
        """Config fields this agent sets for its trainer beyond the shared ones."""
        return {}

    # ------------------------------------------------------------------ building blocks

    def policy_copy(self, task_lm: LoadedModel) -> tuple[torch.nn.Module, Any, str]:
        """A trainable fp32 copy of the policy LM (the cached one stays frozen: it may be the task LM too)."""
        loaded: LoadedModel = load_lm(self.policy_model or policy_for(task_lm), role="policy", dtype=self.dtype)
        model = copy.deepcopy(loaded.model).float()
        model.requires_grad_(True)
        return model, copy.deepcopy(loaded.tokenizer), loaded.spec

    def peft_config(self, model: torch.nn.Module):
        if self.full_finetune:
            return None
        from peft import LoraConfig
        from transformers.pytorch_utils import Conv1D

        conv1d = any(isinstance(module, Conv1D) for module in model.modules())  # GPT-2's transposed linears
        return LoraConfig(task_type="CAUSAL_LM", fan_in_fan_out=conv1d, **self.lora)

    def condition_ids(self, task: ClassificationTask, tokenizer) -> tuple[str, list[int]]:
        """The instruction and its ids as TRL tokenises a text prompt (the tokenizer's own special tokens)."""
        text = {None: default_condition(task), AUTO_CONDITION: task.describe()}.get(self.condition or None, self.condition)
        if not text:
            text = tokenizer.bos_token or tokenizer.eos_token  # RLPrompt's start: the BOS (or EOS) token alone
        ids = tokenizer(text=[text])["input_ids"][0]
        if not ids:
            raise ValueError(f"the condition {text!r} tokenises to nothing")
        return text, list(ids)

    def trl_arguments(self, output_dir: Path, *, prompt_length: int, steps: int, seed: int, tokenizer,
                      save: bool) -> dict:
        """The trainer config's fields: one group of prompts per step and process, L-token completions."""
        on_gpu = default_device().type == "cuda"
        arguments = dict(
            output_dir=str(output_dir), max_steps=steps, seed=seed, learning_rate=self.lr,
            per_device_train_batch_size=self.prompts_per_step, num_generations=self.prompts_per_step,
            max_completion_length=prompt_length, temperature=self.temperature,
            generation_kwargs={"min_new_tokens": prompt_length, "suppress_tokens": suppressed_ids(tokenizer)},
            mask_truncated_completions=False,  # every completion is "truncated" at L tokens by design
            disable_dropout=True, activation_checkpointing=False, bf16=on_gpu and torch.cuda.is_bf16_supported(),
            logging_steps=1, report_to=self.report_to, disable_tqdm=True, dataloader_pin_memory=on_gpu,
            save_strategy="steps" if save else "no", save_steps=self.checkpoint_every or self.eval_every or steps,
            save_total_limit=1, remove_unused_columns=False,
        )
        if self.beta is not None:
            arguments["beta"] = self.beta
        arguments.update(self.trainer_defaults())
        arguments.update(self.trl_options)
        if arguments["mask_truncated_completions"]:
            raise ValueError("mask_truncated_completions=True would mask every prompt: each one is L tokens long")
        return arguments

    def kl_beta(self, arguments: dict) -> float:
        """The KL coefficient the trainer will use (its config's default unless set)."""
        if "beta" in arguments:
            return arguments["beta"]
        return next(f.default for f in dataclasses.fields(self.config_type()) if f.name == "beta")

    @staticmethod
    def reference_from(policy: torch.nn.Module, folder: Path) -> None:
        """Let TRL build the KL reference of a full fine-tune from the initial weights: it loads the model's
        ``name_or_path``, which an embedded or tiny model does not have (and a hub id would need the network)."""
        policy.save_pretrained(folder)
        policy.config._name_or_path = str(folder)

    # ------------------------------------------------------------------ fit

    def fit(self, task: ClassificationTask, *, prompt_length: int, steps: int, seed: int = 0,
            output_dir: str | Path | None = None, resume: bool = False, **kwargs) -> LearnedPrompt:
        if kwargs:
            raise TypeError(f"{type(self).__name__}.fit got unknown arguments {sorted(kwargs)}")
        from datasets import Dataset
        from transformers import PrinterCallback, ProgressCallback

        task_lm = load_lm(self.model, role="task", dtype=self.dtype)
        reward = build_reward(self.reward, task, task_lm, scorer=self.scorer, functions=self.reward_functions,
                              correct_coef=self.correct_coef, incorrect_coef=self.incorrect_coef, dtype=self.dtype)
        policy, tokenizer, policy_spec = self.policy_copy(task_lm)
        condition, condition_ids = self.condition_ids(task, tokenizer)
        train_data, dev_data = task_columns(task, "train"), task_columns(task, "dev")
        trl_reward = TRLReward(reward, train_data, examples_per_call=self.examples_per_step, seed=seed,
                               tokenizer=tokenizer)
        with contextlib.ExitStack() as stack:
            scratch = output_dir is None  # the trainer still needs a folder; nothing is saved in it
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory()) if scratch else output_dir)
            trainer_dir = folder / TRAINER_DIR
            checkpoint = last_checkpoint(trainer_dir)
            if resume and scratch:
                raise ValueError("resume=True needs the output_dir that holds the checkpoint")
            if checkpoint is not None and not resume:
                raise FileExistsError(f"{output_dir} already holds a checkpoint; pass --resume to continue it, "
                                      "or choose a new --output")
            arguments = self.trl_arguments(trainer_dir, prompt_length=prompt_length, steps=steps, seed=seed,
                                           tokenizer=tokenizer, save=not scratch)
            evaluation = DevEvaluation(reward, dev_data if dev_data is not None else train_data or {}, condition_ids,
                                       prompt_length, tokenizer, eval_every=self.eval_every, select_by=self.select_by,
                                       max_seconds=self.max_seconds, quiet=self.quiet)
            context = dict(task=task, task_lm=task_lm, policy_spec=policy_spec, condition=condition,
                           arguments=arguments, seed=seed, reward=reward, evaluation=evaluation)
            if not scratch:
                evaluation.on_best = lambda best: self._learned(best, **context).save(folder / "best")
            if resume:
                print(f"resuming from {checkpoint}" if checkpoint else f"no checkpoint in {trainer_dir}; starting "
                      "from step 0", flush=True)
                if checkpoint:
                    evaluation.load(checkpoint)
            if self.full_finetune and self.kl_beta(arguments) != 0:
                self.reference_from(policy, Path(stack.enter_context(tempfile.TemporaryDirectory())))
            trainer = self.trainer_type()(
                model=policy, reward_funcs=[trl_reward], args=self.config_type()(**arguments),
                train_dataset=Dataset.from_dict({"prompt": [condition] * max(1, min(steps, DATASET_ROWS))}),
                processing_class=tokenizer, peft_config=self.peft_config(policy), callbacks=[evaluation])
            for printer in (PrinterCallback, ProgressCallback):  # DevEvaluation prints what matters
                trainer.remove_callback(printer)
            evaluation.trainer = trainer
            trainer.train(resume_from_checkpoint=checkpoint)
            learned = self._learned(evaluation.finish(trainer.state.global_step), **context)
        if not scratch and evaluation.trainer.accelerator.is_main_process:
            learned.save(output_dir)
        return learned

    def has_checkpoint(self, output_dir: str | Path) -> bool:
        return last_checkpoint(Path(output_dir) / TRAINER_DIR) is not None

    def _learned(self, best: dict, *, task, task_lm, policy_spec, condition, arguments, seed, reward,
                 evaluation: DevEvaluation) -> LearnedPrompt:
        import trl

        scores = {f"dev_{k}": v for k, v in best.items() if k not in ("text", "token_ids", "step")}
        scores["best_step"] = best["step"]
        versions = {"trl_version": trl.__version__}
        if not self.full_finetune:
            import peft

            versions["peft_version"] = peft.__version__
        config = {"trainer": self.trainer_name, "trl_config": {k: v for k, v in arguments.items() if k != "output_dir"},
                  "full_finetune": self.full_finetune, "lora": None if self.full_finetune else dict(self.lora),
                  "prompts_per_step": self.prompts_per_step, "examples_per_step": self.examples_per_step,
                  "eval_every": self.eval_every, "select_by": self.select_by, "max_seconds": self.max_seconds}
        provenance = {"method": self.name, "model": task_lm.spec, "task_model": task_lm.spec,
                      "policy_model": policy_spec, "task": task.name, "seed": seed, "template": task.template.text,
                      "verbalizers": list(task.verbalizers), "label_names": list(task.label_names),
                      "reward": repr(reward), "scorer_model": perplexity_scorer(reward), "condition": condition,
                      "policy_token_ids": best["token_ids"], **versions, "config": config,
                      "computed_with": compute_record(task_lm.dtype, task_lm.device)}
        return LearnedPrompt(text=best["text"], token_ids=task_token_ids(task_lm, best["text"], best["token_ids"]),
                             scores=scores, curve=list(evaluation.curve), provenance=provenance)


def check_trl_options(config_class, options: dict) -> None:
    """Unknown config fields are an error now, not a TypeError after the models have loaded."""
    fields = {field.name for field in dataclasses.fields(config_class)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ValueError(f"{config_class.__name__} has no fields {unknown}")


class GRPOAgent(TRLPromptAgent):
    """GRPO (TRL's ``GRPOTrainer``): advantages are the rewards z-scored within each group of prompts."""

    name = "grpo"
    trainer_name, config_name = "GRPOTrainer", "GRPOConfig"


class RLOOAgent(TRLPromptAgent):
    """RLOO (TRL's ``RLOOTrainer``): each prompt's baseline is the mean reward of the others in its group.

    Advantages are normalised (``normalize_advantages=True``) so that the toolkit's rewards, whose
    scales differ by orders of magnitude (the gap reward is about ±200, a perplexity hundreds),
    give steps of the same size; ``trl_options={"normalize_advantages": False}`` turns it off.
    """

    name = "rloo"
    trainer_name, config_name = "RLOOTrainer", "RLOOConfig"

    def trainer_defaults(self) -> dict:
        return {"normalize_advantages": True}


# --------------------------------------------------------------------------- command line


def add_arguments(parser) -> None:
    """The flags of grpo and rloo (``train`` calls each agent module's once)."""
    group = parser.add_section("trl", "--agent grpo, rloo", agents=("grpo", "rloo"))
    group.add_argument("--full-finetune", action="store_true",
                       help="(grpo, rloo) train every weight of the policy LM instead of a LoRA adapter")
    group.add_argument("--lora-rank", type=int, default=16, help="(grpo, rloo) LoRA rank r")
    group.add_argument("--lora-alpha", type=float, default=32.0, help="(grpo, rloo) LoRA scaling alpha")
    group.add_argument("--lora-dropout", type=float, default=0.0, help="(grpo, rloo) LoRA dropout")
    group.add_argument("--lora-target-modules", nargs="+", metavar="NAME",
                       help="(grpo, rloo) modules that get an adapter, or all-linear; unset: peft's choice for the "
                            "architecture")
    group.add_argument("--kl-beta", type=float,
                       help="(grpo, rloo) KL coefficient towards the initial policy; unset: TRL's default, GRPO 0, "
                            "RLOO 0.05")
    group.add_argument("--temperature", type=float, default=1.0, help="(grpo, rloo) sampling temperature")
    # --report-to is train's own flag (tracking.add_report_to_argument); TRL gets it as its report_to
    group.add_argument("--trl-option", action="append", default=[], type=trl_option, metavar="KEY=VALUE",
                       help="(grpo, rloo) any other GRPOConfig/RLOOConfig field, value as JSON "
                            "(e.g. loss_type=\"grpo\", top_k=256); repeatable")


def trl_option(text: str) -> tuple[str, Any]:
    """``"top_k=256"`` -> ("top_k", 256); a value that is not JSON stays a string (``loss_type=grpo``)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key = key.strip()
    from trl import GRPOConfig, RLOOConfig

    fields = {field.name for config in (GRPOConfig, RLOOConfig) for field in dataclasses.fields(config)}
    if key not in fields:
        raise argparse.ArgumentTypeError(f"neither GRPOConfig nor RLOOConfig has a field {key!r}")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return key, parsed


def from_cli_args(args: argparse.Namespace) -> TRLPromptAgent:
    agent_class = {"grpo": GRPOAgent, "rloo": RLOOAgent}[args.agent]
    return agent_class(
        model=args.model, policy_model=args.policy_model, scorer=args.scorer,
        reward=config_from_args(RewardConfig, args).spec(), reward_functions=args.reward_fn,
        prompts_per_step=args.prompts_per_step, examples_per_step=args.examples_per_step, lr=args.lr,
        condition=args.condition, full_finetune=args.full_finetune, lora_rank=args.lora_rank,
        lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout, lora_target_modules=_targets(args),
        beta=args.kl_beta, temperature=args.temperature, eval_every=args.eval_every or TRLPromptAgent.EVAL_EVERY,
        checkpoint_every=args.checkpoint_every, select_by=args.select_by,
        max_seconds=args.max_minutes * 60 if args.max_minutes else None, report_to=args.report_to,
        trl_options=dict(args.trl_option), correct_coef=args.correct_coef, incorrect_coef=args.incorrect_coef,
        dtype=args.dtype, quiet=args.quiet)


def _targets(args) -> list[str] | str | None:
    """``--lora-target-modules all-linear`` is peft's keyword, not a module name."""
    targets = args.lora_target_modules
    return targets[0] if targets == ["all-linear"] else targets
