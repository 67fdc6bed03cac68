"""Prompt similarity and stochasticity (Interpreting Prompt-Tuning Across SuperGLUE Tasks, §5).

* similarity of two prompts ``A, B`` (``[L, d]`` each): ``‖A − B‖_F = sqrt(Σ_ij (a_ij − b_ij)²)``,
  lower = more similar;
* stochasticity across seeds: the mean and the (unbiased, n − 1) variance of the prompt norms
  ``‖P‖_F`` within each group (a task, or a task and method);
* a 2-D map of the prompts: PCA of the flattened ``[L·d]`` prompt vectors (the top two
  principal directions of the centred data), drawn with matplotlib's Agg backend.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Sequence

import torch

from .errors import MetricInputError


def prompt_matrix(prompt, lm) -> torch.Tensor:
    """``[L, d]``: a soft prompt's embeddings, or the task LM's embeddings of a discrete prompt's tokens
    (what the similarity and the nearest-token readout compare)."""
    if prompt.is_soft:
        return prompt.embeddings.float()
    if not prompt.token_ids:
        raise MetricInputError(f"prompt {prompt.text!r} has neither embeddings nor token ids to read")
    return lm.model.get_input_embeddings().weight.detach()[list(prompt.token_ids)].float().cpu()


def frobenius_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """``‖A − B‖_F``; both prompts must have the same shape ``[L, d]``."""
    if a.shape != b.shape:
        raise MetricInputError(f"prompts of shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be compared with the "
                         "Frobenius distance: they need the same length and hidden size (the same model)")
    return float((a.double() - b.double()).norm())


def similarity_matrix(prompts: Sequence[torch.Tensor]) -> torch.Tensor:
    """``[n, n]`` matrix of ``‖P_i − P_j‖_F`` (symmetric, zero diagonal)."""
    n = len(prompts)
    matrix = torch.zeros((n, n), dtype=torch.float64)
    for i in range(n):
        for j in range(i + 1, n):
            matrix[i, j] = matrix[j, i] = frobenius_distance(prompts[i], prompts[j])
    return matrix


def norm_statistics(prompts: Sequence[torch.Tensor]) -> dict:
    """Mean and unbiased variance of the Frobenius norms of prompts (variance 0 for one prompt)."""
    norms = torch.tensor([float(p.double().norm()) for p in prompts], dtype=torch.float64)
    variance = float(norms.var()) if len(norms) > 1 else 0.0
    return {"n": len(norms), "mean_norm": float(norms.mean()), "variance": variance, "norms": norms.tolist()}


def stochasticity(prompts: Sequence[torch.Tensor], groups: Sequence[str]) -> dict[str, dict]:
    """``norm_statistics`` per group (e.g. the seeds of one task), plus the mean distance within each group."""
    members = defaultdict(list)
    for prompt, group in zip(prompts, groups):
        members[group].append(prompt)
    result = {}
    for group, items in members.items():
        stats = norm_statistics(items)
        distances = similarity_matrix(items)[torch.triu_indices(len(items), len(items), 1).unbind()]
        stats["mean_pairwise_distance"] = float(distances.mean()) if len(items) > 1 else 0.0
        result[group] = stats
    return result


def pca_2d(prompts: Sequence[torch.Tensor]) -> torch.Tensor:
    """``[n, 2]`` coordinates of the flattened prompts on their top two principal components."""
    data = torch.stack([p.double().reshape(-1) for p in prompts])
    data = data - data.mean(0, keepdim=True)
    _, singular, vh = torch.linalg.svd(data, full_matrices=False)
    coords = data @ vh[:2].T
    coords[:, singular[:2] <= 1e-9 * singular[0].clamp(min=1e-300)] = 0.0  # rank < 2: no noise axis
    if coords.shape[1] < 2:  # one prompt, or all identical: pad the missing axis with zeros
        coords = torch.cat([coords, coords.new_zeros((len(prompts), 2 - coords.shape[1]))], 1)
    return coords


def plot_prompt_map(coords: torch.Tensor, labels: Sequence[str], groups: Sequence[str], path: str | Path) -> Path:
    """Scatter of the 2-D map, one colour per group, points of a group joined (the paper's Figure 6)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    for index, group in enumerate(dict.fromkeys(groups)):
        rows = [i for i, g in enumerate(groups) if g == group]
        xy = coords[rows].numpy()
        ax.plot(xy[:, 0], xy[:, 1], "o-", color=f"C{index % 10}", label=group, alpha=0.8)
        for row in rows:
            ax.annotate(labels[row], coords[row].numpy(), fontsize=7, alpha=0.7)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title("learned prompts (PCA of the flattened embeddings)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_matrix(matrix: torch.Tensor, labels: Sequence[str], path: str | Path, title: str, fmt: str = "{:.1f}") -> Path:
    """A heat map with the value in each cell (the paper's Figures 7 and 8)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(labels)
    fig, ax = plt.subplots(figsize=(1.2 * n + 2, 1.0 * n + 1.5))
    image = ax.imshow(matrix.numpy(), cmap="viridis")
    middle = float(matrix[~matrix.isnan()].mean()) if (~matrix.isnan()).any() else 0.0
    ax.set_xticks(range(n), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    for i in range(n):
        for j in range(matrix.shape[1]):
            value = float(matrix[i, j])
            ax.text(j, i, fmt.format(value), ha="center", va="center", color="k" if value > middle else "w", fontsize=7)
    fig.colorbar(image, ax=ax)
    ax.set_title(title)
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
