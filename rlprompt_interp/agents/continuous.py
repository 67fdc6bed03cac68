"""The one training loop behind every continuous-prompt agent (soft prompt, PEZ, waywardness).

A trainable matrix ``P`` ``[L, d]`` sits in the prompt slot of a frozen task LM. Each step the
agent says what the LM sees (``step_prompt``: ``P`` itself, or PEZ's projection of it with a
straight-through gradient) and what it adds to the cross-entropy over the verbalizer logits
(``penalty``: PEZ's perplexity term, waywardness' pull toward a target). Every ``eval_every``
steps the agent's candidate prompt is scored on dev with ``evaluation.evaluate_prompt``; the best
is kept, training stops after ``patience`` evaluations without improvement, and the prompt,
optimizer, sampler and curve are checkpointed atomically so ``resume=True`` continues exactly.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .. import checkpoints
from ..checkpoints import CHECKPOINT_FILE
from ..config import ConfigError, DevConfig, TaskModelConfig, build_config, option
from ..evaluation import evaluate_prompt
from ..metrics.unembed import unembed, vocabulary_matrix
from ..models import LoadedModel, compute_record, dtype_name, load_lm
from ..prompts import LearnedPrompt
from ..scoring import check_template, segment_example, soft_prompt_logits, template_mask
from ..tasks import ClassificationTask
from .base import Agent

PROJECTION_METRICS = ("dot", "cosine", "euclidean")
OPTIMIZERS = ("adamw", "adafactor")
INITS = ("random-vocab", "text")
RANDOM_VOCAB_TOP = 5000  # Lester et al. sample initial embeddings from the 5000 most common tokens


class ContinuousPromptError(ValueError):
    """Options a continuous-prompt agent cannot train with; the message names the fix."""


@dataclass
class ContinuousConfig(DevConfig, TaskModelConfig):
    """Every option of a continuous-prompt agent (soft prompt; PEZ and waywardness add their own), with the
    task LM's: one section of the run's config.yaml."""

    lr: float | None = option(None, "learning rate (when omitted: --lr-scale times the standard deviation of the "
                                    "vocabulary embeddings)", above=0, why="a learning rate is a step size, e.g. 1e-3")
    lr_scale: float = option(0.1, "without --lr, the learning rate is this times the standard deviation of the "
                                  "vocabulary embeddings", above=0)
    optimizer: str = option("adamw", "AdamW or transformers' Adafactor at a fixed learning rate", choices=OPTIMIZERS)
    weight_decay: float = option(0.0, "the optimizer's weight decay", at_least=0)
    batch_size: int = option(16, "training examples per step", at_least=1, aliases=["--batch-size-train"])
    eval_every: int = option(50, "evaluate on the dev split every K steps", at_least=1,
                             why="the best prompt is chosen on dev every K steps")
    eval_batch_size: int = option(32, "examples per forward pass of an evaluation", at_least=1)
    patience: int | None = option(None, "stop after this many dev evaluations without improvement (when omitted: "
                                        "run every step)", at_least=1)
    init: str | None = option(None, "start from random common-token embeddings or from --init-text (when omitted: "
                                    "text when --init-text is given, else random-vocab)", choices=INITS)
    init_text: str | None = option(None, "e.g. ' It was'; placed at the end of the prompt, random tokens before it")
    init_seed: int | None = option(None, "seed of the random initial positions (when omitted: --seed), so runs with "
                                         "different --seed can share one start")
    projection_metric: str = option("dot", "nearest-token projection f_U", choices=PROJECTION_METRICS)
    quiet: bool = option(False, "no progress bars")

    def check(self) -> None:
        if self.init is None:
            self.init = "text" if self.init_text else "random-vocab"
        if self.init == "text" and not self.init_text:
            raise ConfigError("init", "'text' needs an init text (--init-text ' It was')")


# --------------------------------------------------------------------------- vocabulary geometry


def embedding_table(lm: LoadedModel) -> torch.Tensor:
    """The task LM's input embeddings ``[V, d]`` as float32, without rows past the tokenizer
    (T5's padding rows decode to nothing); frozen, no gradient."""
    return vocabulary_matrix(lm.model, lm.tokenizer).float()


def nearest_tokens(vectors: torch.Tensor, table: torch.Tensor, metric: str = "dot") -> torch.Tensor:
    """``f_U``: the id ``[L]`` of the vocabulary embedding nearest each row of ``vectors`` ``[L, d]``
    (the top-1 of the metrics' ``unembed``, so training and the readout project alike)."""
    if metric not in PROJECTION_METRICS:
        raise ContinuousPromptError(f"unknown projection metric {metric!r}; choose one of {list(PROJECTION_METRICS)}")
    return unembed(vectors, table, metric, top_k=1).token_ids[:, 0].to(table.device)


def text_ids(lm: LoadedModel, text: str) -> list[int]:
    ids = lm.tokenizer.encode(text, add_special_tokens=False)
    if not ids:
        raise ContinuousPromptError(f"the text {text!r} has no tokens")
    return ids


def initial_embeddings(lm: LoadedModel, config: ContinuousConfig, prompt_length: int,
                       generator: torch.Generator) -> torch.Tensor:
    """``[L, d]``: random embeddings of common tokens, or those of ``init_text`` at the end of the
    prompt (next to the answer) with random-vocabulary embeddings filling the positions before it."""
    table = embedding_table(lm)
    top = min(RANDOM_VOCAB_TOP, table.shape[0])
    ids = torch.randint(0, top, (prompt_length,), generator=generator).tolist()
    if config.init == "text":
        text = text_ids(lm, config.init_text)
        if len(text) > prompt_length:
            raise ContinuousPromptError(
                f"the init text {config.init_text!r} has {len(text)} tokens, more than the prompt length "
                f"{prompt_length}; use a longer prompt or a shorter text"
            )
        ids[prompt_length - len(text):] = text
    return table[ids].clone()


# --------------------------------------------------------------------------- the agent


@dataclass
class TrainState:
    """Everything besides the prompt and optimizer that a resumed run needs."""

    step: int = 0
    best_accuracy: float = -math.inf
    initial_accuracy: float | None = None
    evals_without_improvement: int = 0
    stopped_early: bool = False
    best: dict | None = None  # text, token_ids, embeddings of the best candidate so far
    curve: list | None = None


class ContinuousPromptAgent(Agent):
    """Base class: subclasses set ``name``/``config_class`` and override the hooks below.

    ``Agent(config)`` or ``Agent(**options)`` with any field of its config (options change a given config)."""

    name = "continuous"
    config_class = ContinuousConfig

    def __init__(self, config: ContinuousConfig | None = None, **options):
        self.config = build_config(self.config_class, config, options)

    @property
    def dtype(self) -> str:
        return self.config.dtype

    # ----- hooks
    def setup(self, lm: LoadedModel, task: ClassificationTask, prompt_length: int) -> int:
        """Load what the agent needs beyond the task LM; return the prompt length to train."""
        return prompt_length

    def initial_prompt(self, lm: LoadedModel, prompt_length: int, generator: torch.Generator) -> torch.Tensor:
        if self.config.init_seed is not None:  # one start for every training seed (seeds then differ in batches only)
            generator = torch.Generator().manual_seed(self.config.init_seed)
        return initial_embeddings(lm, self.config, prompt_length, generator)

    def step_prompt(self, lm: LoadedModel, prompt: torch.Tensor) -> tuple[torch.Tensor, list[int] | None]:
        """What the task LM sees this step, ``[L, d]``, and its token ids when it is a discrete prompt."""
        return prompt, None

    def penalty(self, lm: LoadedModel, prompt: torch.Tensor, seen: torch.Tensor,
                ids: list[int] | None) -> tuple[torch.Tensor | None, dict]:
        """A term added to the task loss (``None`` for none) and figures to log."""
        return None, {}

    def candidate(self, lm: LoadedModel, prompt: torch.Tensor) -> LearnedPrompt:
        """The prompt scored on dev: by default the soft prompt, with its projection as text."""
        ids = nearest_tokens(prompt, embedding_table(lm), self.config.projection_metric).tolist()
        return LearnedPrompt(text=lm.tokenizer.decode(ids), token_ids=ids, embeddings=prompt.detach().float().clone())

    def method_name(self) -> str:
        return self.name

    def default_lr(self, lm: LoadedModel) -> float:
        return self.config.lr_scale * float(embedding_table(lm).std())

    # ----- training

    def fit(self, task: ClassificationTask, *, prompt_length: int, steps: int, seed: int = 0,
            output_dir: str | Path | None = None, resume: bool = False, **kwargs) -> LearnedPrompt:
        if kwargs:
            raise TypeError(f"{self.name}.fit got unexpected options {sorted(kwargs)}")
        if steps < 0:
            raise ContinuousPromptError(f"steps must be non-negative, got {steps}")
        config = self.config
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        lm = load_lm(config.model, role="task", dtype=config.dtype)
        prompt_length = self.setup(lm, task, prompt_length)
        if prompt_length < 1:
            raise ContinuousPromptError(f"prompt_length must be at least 1, got {prompt_length}")

        train = task.load_split("train")
        labels = torch.as_tensor(train["label"], dtype=torch.long, device=lm.device)
        check_template(task.template, lm)
        texts = [task.template.split(example, template_mask(lm)) for example in train]  # (before, after) per example
        verbalizer_ids = task.verbalizer_ids(lm.tokenizer)
        lr = config.lr if config.lr is not None else self.default_lr(lm)

        prompt = torch.nn.Parameter(self.initial_prompt(lm, prompt_length, generator).float().to(lm.device))
        optimizer = build_optimizer(config, [prompt], lr)
        run_config = {**config.to_dict(), "lr": lr, "prompt_length": prompt_length, "steps": steps}
        state = TrainState(curve=[])
        checkpoint = Path(output_dir) / CHECKPOINT_FILE if output_dir is not None else None
        if resume:
            if checkpoint is None:
                raise ContinuousPromptError("resume=True needs the output_dir that holds the checkpoint")
            state = load_checkpoint(checkpoint, prompt, optimizer, generator, self.method_name(), prompt_length, lm)

        def evaluate(step: int) -> None:
            candidate = self.candidate(lm, prompt)
            report = evaluate_prompt(task, lm, candidate, split="dev", limit=config.dev_limit,
                                     batch_size=config.eval_batch_size, progress=False)
            record = {"step": step, "dev_accuracy": report.accuracy, "prompt": candidate.text}
            if state.initial_accuracy is None:
                state.initial_accuracy = report.accuracy
            if report.accuracy > state.best_accuracy:
                state.evals_without_improvement = 0
            else:
                state.evals_without_improvement += 1
            if report.accuracy >= state.best_accuracy:  # ties go to the later, better-trained prompt
                state.best_accuracy = report.accuracy
                state.best = {"text": candidate.text, "token_ids": candidate.token_ids,
                              "embeddings": candidate.embeddings, "continuous": prompt.detach().cpu().clone(),
                              "step": step}
            if state.curve and state.curve[-1]["step"] == step:  # one dict per step: training and dev figures
                state.curve[-1].update(record)
            else:
                state.curve.append(record)
            if self.on_log is not None:
                self.on_log(record)
            if checkpoint is not None:
                save_checkpoint(checkpoint, prompt, optimizer, generator, state, self.method_name(), prompt_length, lm)

        if state.step == 0 and state.initial_accuracy is None:
            evaluate(0)
        bar = tqdm(total=steps, initial=state.step, desc=f"{self.method_name()} L={prompt_length}", unit="step",
                   disable=config.quiet)
        while state.step < steps and not state.stopped_early:
            batch = torch.randperm(len(texts), generator=generator)[:config.batch_size].tolist()
            seen, ids = self.step_prompt(lm, prompt)
            segments = [segment_example(lm, *texts[i], ids) for i in batch]
            logits = soft_prompt_logits(lm, segments, seen, verbalizer_ids)  # [B, num_classes]
            task_loss = F.cross_entropy(logits, labels[batch])
            extra, logs = self.penalty(lm, prompt, seen, ids)
            loss = task_loss if extra is None else task_loss + extra
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            state.step += 1
            record = {"step": state.step, "loss": loss.item(), "task_loss": task_loss.item(),
                      "train_accuracy": float((logits.argmax(-1) == labels[batch]).float().mean()), **logs}
            if ids is not None:
                record["prompt_ids"] = list(ids)
            state.curve.append(record)
            if self.on_log is not None:
                self.on_log(record)
            bar.update(1)
            bar.set_postfix(loss=f"{record['loss']:.3f}", best_dev=f"{state.best_accuracy:.3f}")
            if state.step % config.eval_every == 0 or state.step == steps:
                evaluate(state.step)
                if config.patience is not None and state.evals_without_improvement >= config.patience:
                    state.stopped_early = True
                    if checkpoint is not None:
                        save_checkpoint(checkpoint, prompt, optimizer, generator, state, self.method_name(),
                                        prompt_length, lm)
        bar.close()

        best = state.best
        learned = LearnedPrompt(
            text=best["text"], token_ids=best["token_ids"], embeddings=best["embeddings"],
            scores={"dev_accuracy": state.best_accuracy, "initial_dev_accuracy": state.initial_accuracy,
                    "best_step": best["step"], "steps_run": state.step, "stopped_early": state.stopped_early},
            curve=state.curve,
            provenance={"method": self.method_name(), "model": lm.spec, "task_model": lm.spec, "task": task.name,
                        "template": task.template.text, "verbalizers": list(task.verbalizers), "seed": seed,
                        "data_seed": task.seed, "config": run_config, **self.provenance_extra(),
                        "computed_with": compute_record(lm.dtype, lm.device)},
        )
        if output_dir is not None:
            learned.save(output_dir)
            self.save_extra(Path(output_dir), best)
        return learned

    def provenance_extra(self) -> dict:
        return {}

    def save_extra(self, output_dir: Path, best: dict) -> None:
        """Write agent-specific files next to the learned prompt."""


def build_optimizer(config: ContinuousConfig, params: list, lr: float) -> torch.optim.Optimizer:
    if config.optimizer == "adafactor":
        from transformers.optimization import Adafactor

        # a fixed learning rate, as Lester et al. use it (no relative step, no parameter scaling)
        return Adafactor(params, lr=lr, weight_decay=config.weight_decay, scale_parameter=False,
                         relative_step=False, warmup_init=False)
    return torch.optim.AdamW(params, lr=lr, weight_decay=config.weight_decay)


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(path: Path, prompt: torch.Tensor, optimizer: torch.optim.Optimizer, generator: torch.Generator,
                    state: TrainState, method: str, prompt_length: int, model: LoadedModel | None = None) -> None:
    """Prompt, optimizer, sampler state and progress in one file, replaced atomically (the previous one kept)."""
    payload = {"prompt": prompt.detach().cpu(), "optimizer": optimizer.state_dict(), "generator": generator.get_state(),
               "state": asdict(state)}
    checkpoints.save_checkpoint(path, payload, checkpoint_identity(method, prompt_length, model))


def load_checkpoint(path: Path, prompt: torch.Tensor, optimizer: torch.optim.Optimizer, generator: torch.Generator,
                    method: str, prompt_length: int, model: LoadedModel | None = None) -> TrainState:
    payload = checkpoints.load_checkpoint(path, checkpoint_identity(method, prompt_length, model),
                                          map_location="cpu")
    if payload is None:
        raise FileNotFoundError(f"cannot resume: {path} does not exist (train without --resume first)")
    with torch.no_grad():
        prompt.copy_(payload["prompt"].to(prompt))
    optimizer.load_state_dict(payload["optimizer"])
    generator.set_state(payload["generator"])
    return TrainState(**payload["state"])


def checkpoint_identity(method: str, prompt_length: int, model: LoadedModel | None) -> dict:
    """What a checkpoint must match to be resumed (see ``checkpoints``): method, model, its dtype and prompt length."""
    return {"method": method, "model": getattr(model, "spec", None), "prompt_length": prompt_length,
            "dtype": dtype_name(model.dtype) if model is not None else None}
