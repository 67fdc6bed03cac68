"""Zero-shot cross-task transfer of learned prompts (Interpreting Prompt-Tuning Across SuperGLUE Tasks, §5.3).

``T[i, j] = acc_j(P_i) − acc_j(no prompt)``: the accuracy change on task j when the prompt
learned on task i fills the prompt slot, against the same template with an empty slot. Its
correlation with the similarity matrix ``S[i, j] = ‖P_i − P_j‖_F`` says whether similar prompts
transfer better (a negative correlation, since lower S means more similar).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch

from ..evaluation import evaluate_prompt
from ..models import LoadedModel
from ..prompts import LearnedPrompt
from ..tasks import ClassificationTask
from .errors import MetricInputError


def transfer_matrix(accuracy: torch.Tensor, baseline: torch.Tensor) -> torch.Tensor:
    """``T = accuracy − baseline[None, :]``; ``accuracy[i, j]`` is prompt i on task j, ``baseline[j]`` no prompt."""
    accuracy, baseline = torch.as_tensor(accuracy, dtype=torch.float64), torch.as_tensor(baseline, dtype=torch.float64)
    if accuracy.dim() != 2 or baseline.shape != accuracy.shape[1:]:
        raise MetricInputError(f"need accuracy [prompts, tasks] and baseline [tasks]; got {tuple(accuracy.shape)} and "
                         f"{tuple(baseline.shape)}")
    return accuracy - baseline[None, :]


def evaluate_transfer(prompts: Mapping[str, LearnedPrompt], tasks: Mapping[str, ClassificationTask], lm: LoadedModel,
                      *, split: str = "dev", limit: int | None = None, batch_size: int = 32) -> dict:
    """Accuracy of every prompt on every task, the no-prompt baselines, and the transfer matrix.

    ``prompts`` maps a row label to a learned prompt; ``tasks`` maps a column label to a task.
    The baseline is an empty discrete prompt, scored through the same code path as the prompts.
    """
    empty = LearnedPrompt(text="", token_ids=[])
    baseline = torch.tensor([evaluate_prompt(task, lm, empty, split=split, limit=limit, batch_size=batch_size,
                                             progress=False).accuracy for task in tasks.values()])
    accuracy = torch.tensor([[evaluate_prompt(task, lm, prompt, split=split, limit=limit, batch_size=batch_size,
                                              progress=False).accuracy for task in tasks.values()]
                             for prompt in prompts.values()])
    return {"prompts": list(prompts), "tasks": list(tasks), "split": split, "accuracy": accuracy.tolist(),
            "baseline": baseline.tolist(), "transfer": transfer_matrix(accuracy, baseline).tolist()}


def _ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks 1..n with ties given their average rank."""
    order = values.argsort()
    ranks = torch.empty_like(values)
    ranks[order] = torch.arange(1, len(values) + 1, dtype=values.dtype)
    for value in values.unique():
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def _pearson(x: torch.Tensor, y: torch.Tensor) -> float:
    x, y = x - x.mean(), y - y.mean()
    denominator = x.norm() * y.norm()
    return float((x * y).sum() / denominator) if denominator > 0 else float("nan")


def matrix_correlation(a: torch.Tensor, b: torch.Tensor, include_diagonal: bool = False,
                       mask: torch.Tensor | None = None) -> dict:
    """Pearson and Spearman correlation of the entries of two same-shape matrices.

    ``r = Σ (a − ā)(b − b̄) / (‖a − ā‖ ‖b − b̄‖)`` over the chosen entries: those of ``mask`` when
    given, else all but the diagonal (a prompt's distance to itself is 0 whatever it does) unless
    ``include_diagonal``. NaN entries are left out; NaN when an input is constant.
    """
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    if a.shape != b.shape or a.dim() != 2:
        raise MetricInputError(f"need two matrices of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if mask is not None:
        keep = torch.as_tensor(mask, dtype=torch.bool).clone()
    else:
        keep = torch.ones_like(a, dtype=torch.bool)
        if not include_diagonal:
            keep &= ~torch.eye(*a.shape, dtype=torch.bool)
    keep &= ~(a.isnan() | b.isnan())
    x, y = a[keep], b[keep]
    return {"pearson": _pearson(x, y), "spearman": _pearson(_ranks(x), _ranks(y)), "n": int(keep.sum())}


def labels_for(names: Sequence[str]) -> list[str]:
    """Unique row/column labels: a repeated name gets ``#2``, ``#3`` ... appended."""
    seen: dict[str, int] = {}
    labels = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        labels.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return labels
