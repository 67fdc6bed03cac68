"""Task accuracy of a prompt: the same code for every agent's prompts, so tables compare like with like."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

import torch
from tqdm.auto import tqdm

from .models import LoadedModel
from .prompts import LearnedPrompt
from .scoring import batched_by_length, batched_next_token_logits, encode_texts, segment_example, soft_prompt_logits
from .tasks import ClassificationTask


@dataclass
class ClassificationReport:
    """Accuracy overall and per true class, and how often each class was predicted."""

    task: str
    split: str
    prompt: str
    num_examples: int
    accuracy: float
    per_class_accuracy: dict[str, float]
    predicted_fraction: dict[str, float]
    subset: str | None = None  # how a --limit subset was drawn; None: the whole split
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def format(self) -> str:
        lines = [f"task={self.task} split={self.split} n={self.num_examples} prompt={self.prompt!r}"
                 + (f"\nexamples: {self.subset}" if self.subset else ""),
                 f"accuracy      {self.accuracy:.4f}"]
        for name, acc in self.per_class_accuracy.items():
            lines.append(f"  {name:<18} accuracy {acc:.4f}   predicted {self.predicted_fraction[name]:.3f}")
        return "\n".join(lines)


def summarise(task: ClassificationTask, split: str, prompt: str, predictions: Sequence[int],
              labels: Sequence[int], subset: str | None = None) -> ClassificationReport:
    """Accuracy figures from predicted and true class indices."""
    predictions, labels = torch.as_tensor(list(predictions)), torch.as_tensor(list(labels))
    n = len(labels)
    per_class, predicted = {}, {}
    for index, name in enumerate(task.label_names):
        of_class = labels == index
        per_class[name] = float((predictions[of_class] == index).float().mean()) if of_class.any() else float("nan")
        predicted[name] = float((predictions == index).float().mean())
    return ClassificationReport(task=task.name, split=split, prompt=prompt, num_examples=n,
                                accuracy=float((predictions == labels).float().mean()),
                                per_class_accuracy=per_class, predicted_fraction=predicted, subset=subset)


def evaluate_text_prompt(task: ClassificationTask, lm: LoadedModel, prompt: str, *, split: str = "test",
                         limit: int | None = None, batch_size: int = 32, progress: bool = True) -> ClassificationReport:
    """Classify every example of ``split`` with ``prompt`` placed by the task's template."""
    examples = task.load_split(split, limit=limit)
    verbalizer_ids = task.verbalizer_ids(lm.tokenizer)
    sequences = encode_texts(lm, [task.format(example, prompt) for example in examples])
    with tqdm(total=len(sequences), desc=f"eval {task.name}/{split}", unit="ex", disable=not progress) as bar:
        logits = batched_next_token_logits(lm, sequences, verbalizer_ids, batch_size, progress=bar.update)
    return summarise(task, split, prompt, logits.argmax(-1).tolist(), examples["label"], task.subset_note(split, limit))


def evaluate_prompt(task: ClassificationTask, lm: LoadedModel, prompt: str | LearnedPrompt, *, split: str = "test",
                    limit: int | None = None, batch_size: int = 32, progress: bool = True) -> ClassificationReport:
    """Accuracy of a text prompt, a discrete learned prompt (its token ids) or a soft prompt (its embeddings)."""
    if isinstance(prompt, str):
        return evaluate_text_prompt(task, lm, prompt, split=split, limit=limit, batch_size=batch_size, progress=progress)
    examples = task.load_split(split, limit=limit)
    with tqdm(total=len(examples), desc=f"eval {task.name}/{split}", unit="ex", disable=not progress) as bar:
        logits = prompt_logits(task, lm, prompt, examples, task.verbalizer_ids(lm.tokenizer), batch_size,
                               progress=bar.update)
    return summarise(task, split, prompt.text, logits.argmax(-1).tolist(), examples["label"],
                     task.subset_note(split, limit))


def prompt_logits(task: ClassificationTask, lm: LoadedModel, prompt: LearnedPrompt, examples, token_ids: Sequence[int],
                  batch_size: int = 32, progress=None) -> torch.Tensor:
    """Next-token logits ``[N, len(token_ids)]`` after each example with a learned prompt in the slot.

    Soft prompts (``prompt.embeddings``) are fed as embeddings; discrete ones as their token ids,
    never re-tokenised. ``progress`` is an optional callable taking the number of examples done.
    """
    splits = [task.template.split(example) for example in examples]
    if prompt.is_soft:
        segments = [segment_example(lm, before, after) for before, after in splits]
        with torch.inference_mode():
            return batched_by_length(segments, [len(b) + len(a) for b, a in segments],
                                     lambda batch: soft_prompt_logits(lm, batch, prompt.embeddings, token_ids),
                                     len(token_ids), batch_size, progress)
    ids = list(prompt.token_ids or [])
    sequences = [b + ids + a for b, a in (segment_example(lm, before, after, ids) for before, after in splits)]
    return batched_next_token_logits(lm, sequences, token_ids, batch_size, progress=progress)
