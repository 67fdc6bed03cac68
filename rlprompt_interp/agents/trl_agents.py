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

import contextlib
import copy
import dataclasses
import json
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import GenerationConfig, TrainerCallback

from ..atomic import write_json_atomic
from ..config import AgentConfig, ConfigError, ModelConfig, RunConfig, build_config, option, section
from ..models import LoadedModel, compute_record, default_device, load_lm, policy_for
from ..policies import AUTO_CONDITION
from ..prompts import LearnedPrompt
from ..rewards import PromptBatch, Reward, TRLReward, perplexity_scorer, term_scores
from ..selection import SELECT_BY, PromptSelection
from ..tasks import ClassificationTask
from ..tracking import TrackingConfig
from .base import Agent
from .rlprompt import RewardConfig, task_token_ids, training_splits

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
    """Scores the greedy prompt on dev every ``eval_every`` steps, keeps the best (a ``PromptSelection``, as the
    SQL trainer does) and the per-step curve, stops training after ``max_seconds`` (counted over resumes), and
    saves all of it with each checkpoint."""

    def __init__(self, reward: Reward, data: dict, condition_ids: list[int], prompt_length: int, tokenizer,
                 *, eval_every: int, select_by: str = "reward", max_seconds: float | None = None,
                 quiet: bool = False, on_best=None):
        self.reward, self.data, self.condition_ids = reward, data, condition_ids
        self.tokenizer, self.eval_every = tokenizer, eval_every
        self.max_seconds, self.quiet, self.on_best = max_seconds, quiet, on_best
        self.generation = GenerationConfig(do_sample=False, max_new_tokens=prompt_length,
                                           min_new_tokens=prompt_length, suppress_tokens=suppressed_ids(tokenizer),
                                           pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        self.trainer = None  # set once the trainer exists: the greedy prompt comes from its (unwrapped) model
        self.selection = PromptSelection(select_by)  # the best dev result; no re-selection at the end (yet)
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
        if self.selection.observe(result) and self.on_best is not None and main:
            self.on_best(result)
        if not self.quiet and main:
            keys = ("reward", *term_scores(result), "accuracy", "perplexity")
            brief = " ".join(f"{k}={result[k]:.4g}" for k in keys if k in result)
            print(f"step {step}: dev {brief} {text!r}  best {self.best['text']!r}", flush=True)
        return result

    @property
    def best(self) -> dict | None:
        return self.selection.best

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
            self.selection.load_state_dict(state)
            self.curve, self.elapsed = state["curve"], state["elapsed"]
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


@dataclass
class TRLConfig(TrackingConfig, RunConfig):
    """How TRL's trainer fine-tunes the policy LM: groups of prompts, LoRA or every weight, KL, evaluation."""

    policy_model: str | None = option(None, "the LM fine-tuned to write the prompt (when omitted: the task LM, --model; "
                                            "beside a masked task LM, distilgpt2, offline smollm2-135m)")
    condition: str | None = option(AUTO_CONDITION, "the instruction the policy LM continues with the prompt; auto: "
                                                   "the task's description (task.json 'description', else one "
                                                   "derived from the verbalizers); '' or null: one that names the "
                                                   "task's answers")
    prompts_per_step: int = option(8, "prompts sampled per step: one group, scored against each other", at_least=2,
                                   why="each step's prompts are one group, scored against each other")
    examples_per_step: int = option(16, "training examples each prompt is scored on per step", at_least=1)
    lr: float | None = option(None, "learning rate (when omitted: 1e-4, with --full-finetune 1e-5)", above=0,
                              why="a learning rate is a step size, e.g. 1e-4")
    full_finetune: bool = option(False, "train every weight of the policy LM instead of a LoRA adapter")
    lora_rank: int = option(16, "LoRA rank r", at_least=1)
    lora_alpha: float = option(32.0, "LoRA scaling alpha", above=0)
    lora_dropout: float = option(0.0, "LoRA dropout", at_least=0, at_most=1)
    lora_target_modules: list[str] | None = option(None, "modules that get an adapter, or all-linear (when omitted: "
                                                         "peft's choice for the architecture)", metavar="NAME")
    kl_beta: float | None = option(None, "KL coefficient towards the initial policy (when omitted: TRL's default, "
                                         "GRPO 0, RLOO 0.05)", at_least=0)
    temperature: float = option(1.0, "sampling temperature", above=0)
    eval_every: int = option(50, "evaluate the greedy prompt on the dev split every K steps (0: only at the end)",
                             at_least=0)
    checkpoint_every: int | None = option(None, "steps between checkpoints (when omitted: --eval-every)", at_least=1)
    select_by: str = option("reward", "the dev figure that picks the best prompt", choices=SELECT_BY)
    trl_options: dict[str, Any] = option({}, "any other GRPOConfig/RLOOConfig field, value as JSON (e.g. "
                                             "loss_type=\"grpo\", top_k=256); repeatable", flag="--trl-option",
                                         metavar="KEY=VALUE")

    def check(self) -> None:
        if not self.trl_options:
            return
        from trl import GRPOConfig, RLOOConfig

        fields = {field.name for config in (GRPOConfig, RLOOConfig) for field in dataclasses.fields(config)}
        unknown = sorted(set(self.trl_options) - fields)
        if unknown:
            raise ConfigError("--trl-option", f"gives {unknown}: neither GRPOConfig nor RLOOConfig has such a field")
        if self.trl_options.get("mask_truncated_completions"):
            raise ConfigError("--trl-option", "mask_truncated_completions=True would mask every prompt: each one is "
                                             "L tokens long")

    def resolved(self, task=None) -> "TRLConfig":
        if self.condition != AUTO_CONDITION or task is None:
            return self
        return dataclasses.replace(self, condition=task.describe())

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (1e-5 if self.full_finetune else 1e-4)


@dataclass
class TRLAgentConfig(AgentConfig):
    """Every option of the grpo and rloo agents: the models, the reward and the trainer's."""

    models: ModelConfig = section(ModelConfig, "models")
    reward: RewardConfig = section(RewardConfig, "the reward")
    trl: TRLConfig = section(TRLConfig, "--agent grpo, rloo: the TRL trainer")

    RENAMED = {"beta": ("kl_beta", lambda beta: beta), "reward_functions": ("reward_fn", list),
               "max_seconds": ("max_minutes", lambda seconds: None if seconds is None else seconds / 60)}


class TRLPromptAgent(Agent):
    """A TRL trainer (GRPO or RLOO) fine-tunes the policy LM to write the prompt; see the module docstring.

    ``TRLPromptAgent(config)`` or ``(**options)`` with any field of :class:`TRLAgentConfig`; ``reward`` may
    also be a Reward object. ``trl_options`` sets any other field of the trainer's config (``GRPOConfig`` /
    ``RLOOConfig``), e.g. ``{"loss_type": "grpo", "top_k": 256}``.
    """

    name = "trl"
    trainer_name = ""  # "GRPOTrainer" / "RLOOTrainer" in trl
    config_name = ""
    config_class = TRLAgentConfig

    def __init__(self, config: TRLAgentConfig | None = None, *, reward: str | Reward | None = None, **options):
        self.reward_object = reward if isinstance(reward, Reward) else None
        if reward is not None and self.reward_object is None:
            options["reward"] = reward
        self.config = build_config(TRLAgentConfig, config, options)
        check_trl_options(self.config_type(), self.config.trl_options)

    @property
    def dtype(self) -> str:
        return self.config.dtype

    @property
    def lora(self) -> dict:
        targets = self.config.lora_target_modules
        return dict(r=self.config.lora_rank, lora_alpha=self.config.lora_alpha, lora_dropout=self.config.lora_dropout,
                    target_modules=targets[0] if targets == ["all-linear"] else targets)  # peft's keyword, not a name

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
        loaded: LoadedModel = load_lm(self.config.policy_model or policy_for(task_lm), role="policy", dtype=self.dtype)
        model = copy.deepcopy(loaded.model).float()
        model.requires_grad_(True)
        return model, copy.deepcopy(loaded.tokenizer), loaded.spec

    def peft_config(self, model: torch.nn.Module):
        if self.config.full_finetune:
            return None
        from peft import LoraConfig
        from transformers.pytorch_utils import Conv1D

        conv1d = any(isinstance(module, Conv1D) for module in model.modules())  # GPT-2's transposed linears
        return LoraConfig(task_type="CAUSAL_LM", fan_in_fan_out=conv1d, **self.lora)

    def condition_ids(self, task: ClassificationTask, tokenizer) -> tuple[str, list[int]]:
        """The instruction and its ids as TRL tokenises a text prompt (the tokenizer's own special tokens)."""
        text = self.config.trl.resolved(task).condition or default_condition(task)
        ids = tokenizer(text=[text])["input_ids"][0]
        if not ids:
            raise ValueError(f"the condition {text!r} tokenises to nothing")
        return text, list(ids)

    def trl_arguments(self, output_dir: Path, *, prompt_length: int, steps: int, seed: int, tokenizer,
                      save: bool) -> dict:
        """The trainer config's fields: one group of prompts per step and process, L-token completions."""
        on_gpu = default_device().type == "cuda"
        arguments = dict(
            output_dir=str(output_dir), max_steps=steps, seed=seed, learning_rate=self.config.trl.learning_rate,
            per_device_train_batch_size=self.config.prompts_per_step, num_generations=self.config.prompts_per_step,
            max_completion_length=prompt_length, temperature=self.config.temperature,
            generation_kwargs={"min_new_tokens": prompt_length, "suppress_tokens": suppressed_ids(tokenizer)},
            mask_truncated_completions=False,  # every completion is "truncated" at L tokens by design
            disable_dropout=True, activation_checkpointing=False, bf16=on_gpu and torch.cuda.is_bf16_supported(),
            logging_steps=1, report_to=self.config.report_to, disable_tqdm=True, dataloader_pin_memory=on_gpu,
            save_strategy="steps" if save else "no", save_steps=self.config.checkpoint_every or self.config.eval_every or steps,
            save_total_limit=1, remove_unused_columns=False,
        )
        if self.config.kl_beta is not None:
            arguments["beta"] = self.config.kl_beta
        arguments.update(self.trainer_defaults())
        arguments.update(self.config.trl_options)  # TRLConfig.check refused mask_truncated_completions=True
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

        config = self.config
        task_lm = load_lm(config.model, role="task", dtype=self.dtype)
        reward = config.reward.build(task, task_lm, scorer=config.scorer, dtype=self.dtype, reward=self.reward_object)
        policy, tokenizer, policy_spec = self.policy_copy(task_lm)
        condition, condition_ids = self.condition_ids(task, tokenizer)
        train_data, dev_data = training_splits(task)
        trl_reward = TRLReward(reward, train_data, examples_per_call=config.examples_per_step, seed=seed,
                               tokenizer=tokenizer)
        with contextlib.ExitStack() as stack:
            stack.enter_context(warnings.catch_warnings())
            # TRL 1.x reads the model's is_gradient_checkpointing before each generation, which transformers 5
            # deprecates with a warning per step; the property is TRL's to rename, and its value is False here
            warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
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
                                       prompt_length, tokenizer, eval_every=config.eval_every, select_by=config.select_by,
                                       max_seconds=config.trl.max_seconds, quiet=config.quiet)
            context = dict(task=task, task_lm=task_lm, policy_spec=policy_spec, condition=condition,
                           arguments=arguments, seed=seed, reward=reward, evaluation=evaluation)
            if not scratch:
                evaluation.on_best = lambda best: self._learned(best, **context).save(folder / "best")
            if resume:
                print(f"resuming from {checkpoint}" if checkpoint else f"no checkpoint in {trainer_dir}; starting "
                      "from step 0", flush=True)
                if checkpoint:
                    evaluation.load(checkpoint)
            if config.full_finetune and self.kl_beta(arguments) != 0:
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
        if not self.config.full_finetune:
            import peft

            versions["peft_version"] = peft.__version__
        config = {"trainer": self.trainer_name, "trl_config": {k: v for k, v in arguments.items() if k != "output_dir"},
                  "lora": None if self.config.full_finetune else dict(self.lora), **self.config.to_dict()}
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
