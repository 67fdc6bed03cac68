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

import argparse
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .. import checkpoints
from ..checkpoints import CHECKPOINT_FILE
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
class ContinuousConfig:
    """Options shared by every continuous-prompt agent (agents subclass it for their own)."""

    model: str = "auto"
    dtype: str = "auto"
    lr: float | None = None  # None: lr_scale × the standard deviation of the vocabulary embeddings
    lr_scale: float = 0.1
    optimizer: str = "adamw"
    weight_decay: float = 0.0
    batch_size: int = 16
    eval_every: int = 50
    eval_batch_size: int = 32
    dev_limit: int | None = None
    patience: int | None = None  # dev evaluations without improvement before stopping; None: never stop early
    init: str = "random-vocab"
    init_text: str | None = None
    init_seed: int | None = None  # draws the random initial positions; None: the training seed
    projection_metric: str = "dot"
    quiet: bool = False

    def __post_init__(self):
        for name, allowed in (("optimizer", OPTIMIZERS), ("init", INITS), ("projection_metric", PROJECTION_METRICS)):
            if getattr(self, name) not in allowed:
                raise ContinuousPromptError(f"unknown {name} {getattr(self, name)!r}; choose one of {list(allowed)}")
        if self.init == "text" and not self.init_text:
            raise ContinuousPromptError("init 'text' needs an init text (--init-text ' It was')")
        for name in ("batch_size", "eval_every", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ContinuousPromptError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.patience is not None and self.patience < 1:
            raise ContinuousPromptError(
                f"patience must be at least 1 (or None to never stop early), got {self.patience}")
        if self.lr is not None and not self.lr > 0:
            raise ContinuousPromptError(f"the learning rate must be positive, got {self.lr}")


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
    """Base class: subclasses set ``name``/``config_class`` and override the hooks below."""

    name = "continuous"
    config_class = ContinuousConfig

    def __init__(self, config: ContinuousConfig | None = None, **options):
        if config is not None and options:
            raise TypeError("pass either a config or keyword options, not both")
        if config is None:
            known = {f.name for f in fields(self.config_class)}
            unknown = sorted(set(options) - known)
            if unknown:
                raise ContinuousPromptError(f"{self.name} has no options {unknown}; available: {sorted(known)}")
            config = self.config_class(**options)
        self.config = config

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
        run_config = {**asdict(config), "lr": lr, "prompt_length": prompt_length, "steps": steps}
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


# --------------------------------------------------------------------------- command line


def add_continuous_arguments(group) -> None:
    """Flags shared by soft-prompt, pez and wayward (``rlprompt-interp train`` adds them once)."""
    group.add_argument("--batch-size-train", type=int, default=16,
                       help="(soft-prompt, pez, wayward) training examples per step")
    group.add_argument("--optimizer", choices=OPTIMIZERS, default="adamw",
                       help="(soft-prompt, pez, wayward) AdamW or transformers' Adafactor at a fixed learning rate")
    group.add_argument("--weight-decay", type=float, default=0.0, help="(soft-prompt, pez, wayward) the optimizer's weight decay")
    group.add_argument("--lr-scale", type=float, default=None,
                       help="(soft-prompt, pez, wayward) without --lr, the learning rate is this times the standard "
                            "deviation of the vocabulary embeddings (default: 0.1; pez 1.0)")
    group.add_argument("--patience", type=int, default=None,
                       help="(soft-prompt, pez, wayward) stop after this many dev evaluations without improvement "
                            "(when omitted: run every step)")
    group.add_argument("--dev-limit", type=int, default=None, help="(soft-prompt, pez, wayward) score only N dev examples (when omitted: all of them)")
    group.add_argument("--init", choices=INITS, default=None,
                       help="(soft-prompt, pez) start from random common-token embeddings or from --init-text "
                            "(default: text when --init-text is given)")
    group.add_argument("--init-text", default=None,
                       help="(soft-prompt, pez) e.g. ' It was'; placed at the end of the prompt, random tokens before it")
    group.add_argument("--init-seed", type=int, default=None,
                       help="(soft-prompt, pez) seed of the random initial positions (default: --seed), so runs "
                            "with different --seed can share one start")
    group.add_argument("--projection-metric", choices=PROJECTION_METRICS, default=None,
                       help="(soft-prompt, pez, wayward) nearest-token projection f_U (default: dot; pez cosine, "
                            "as in Wen et al.)")


def config_options(args: argparse.Namespace) -> dict:
    """ContinuousConfig options from the parsed command line (shared and continuous flags)."""
    options = dict(model=args.model, dtype=args.dtype, lr=args.lr, optimizer=args.optimizer,
                   weight_decay=args.weight_decay, batch_size=args.batch_size_train,
                   eval_batch_size=args.eval_batch_size, dev_limit=args.dev_limit, patience=args.patience,
                   init_text=args.init_text, init_seed=args.init_seed, quiet=args.quiet)
    options["init"] = args.init or ("text" if args.init_text else "random-vocab")
    for name in ("lr_scale", "projection_metric", "eval_every"):  # unset: the agent's own default
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    return options
