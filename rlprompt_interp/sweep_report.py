"""Summaries of sweep records: mean ± std over seeds, markdown tables, Pareto fronts, trade-off plots.

Kept apart from :mod:`rlprompt_interp.sweeps` (which runs cells) so a table can be rebuilt from a
finished output folder without loading a model.
"""

from __future__ import annotations

import contextlib
import math
import statistics
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence


def group_records(records: Sequence[Mapping], by: Sequence[str]) -> dict[tuple, list[Mapping]]:
    """Records grouped by the values of the cell keys ``by`` (first-seen order kept)."""
    groups: dict[tuple, list[Mapping]] = {}
    for record in records:
        key = tuple(record["cell"].get(name) for name in by)
        groups.setdefault(key, []).append(record)
    return groups


def mean_std(values: Sequence[float | None]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (0 for one value) and count of the values that are not None."""
    present = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not present:
        return math.nan, math.nan, 0
    return statistics.fmean(present), statistics.stdev(present) if len(present) > 1 else 0.0, len(present)


def summarize(records: Sequence[Mapping], by: Sequence[str], metrics: Sequence[str]) -> list[dict]:
    """One row per group: the cell keys, then ``<metric>_mean``, ``<metric>_std``, ``n`` and the records."""
    rows = []
    for key, members in group_records(records, by).items():
        row: dict[str, Any] = dict(zip(by, key))
        for metric in metrics:
            mean, std, count = mean_std([member.get(metric) for member in members])
            row[f"{metric}_mean"], row[f"{metric}_std"] = mean, std
        row["n"] = len(members)
        row["records"] = list(members)
        rows.append(row)
    return rows


def summarize_with_log_perplexity(records: Sequence[dict], by: Sequence[str],
                                  metrics: Sequence[str] = ()) -> list[dict]:
    """``summarize`` of test accuracy and prompt log-perplexity (so its mean is the log of the geometric mean
    perplexity over seeds), plus ``metrics``; each record gets its ``log_perplexity``."""
    for record in records:
        ppl = record.get("prompt_perplexity")
        record["log_perplexity"] = math.log(ppl) if ppl else None
    return summarize(records, by=by, metrics=["test_accuracy", "log_perplexity", *metrics])


def format_mean_std(mean: float, std: float, digits: int = 3) -> str:
    if mean is None or math.isnan(mean):
        return "-"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def format_number(value: float | None, digits: int = 3) -> str:
    """Compact: fixed point for ordinary values, scientific for very large or small ones."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.2e}"
    return f"{value:.{digits}f}"


# columns of the rows of ``summarize_with_log_perplexity``, for ``markdown_table``
ACCURACY_COLUMN = ("test accuracy (mean ± std)", lambda r: format_mean_std(r["test_accuracy_mean"], r["test_accuracy_std"]))
PERPLEXITY_COLUMN = ("prompt perplexity (geometric mean)", lambda r: "-" if math.isnan(r["log_perplexity_mean"])
                     else format_number(math.exp(r["log_perplexity_mean"])))
SAMPLE_COLUMN = ("sample prompt (best seed)", lambda r: repr(max(r["records"], key=lambda x: x["test_accuracy"])["prompt"]))


def markdown_table(rows: Sequence[Mapping], columns: Sequence[tuple[str, Callable[[Mapping], Any]]]) -> str:
    """A markdown table; ``columns`` are ``(header, row -> cell value)`` pairs. Pipes in cells are escaped."""
    lines = ["| " + " | ".join(header for header, _ in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [str(getter(row)).replace("|", "\\|").replace("\n", "\\n") for _, getter in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pareto_front(points: Sequence[tuple[float, float]], *, maximize_x: bool = False,
                 maximize_y: bool = True) -> list[int]:
    """Indices of the points no other point beats on both axes (at least as good on both, better on one)."""
    def better_or_equal(a, b, maximize):
        return a >= b if maximize else a <= b

    front = []
    for i, (x, y) in enumerate(points):
        dominated = any(
            better_or_equal(ox, x, maximize_x) and better_or_equal(oy, y, maximize_y) and (ox, oy) != (x, y)
            for j, (ox, oy) in enumerate(points) if j != i
        )
        if not dominated:
            front.append(i)
    return front


@contextlib.contextmanager
def saved_figure(path: str | Path, ncols: int = 1, figsize: tuple[float, float] = (7, 4.5)) -> Iterator:
    """The axes of a new figure (one, or a row of ``ncols``), laid out and written to ``path`` (PNG, 120 dpi) on
    leaving the block; matplotlib's file-only backend, so no display is needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=figsize)
    try:
        yield axes
        fig.tight_layout()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)


def plot_tradeoff(points: Sequence[tuple[float, float]], labels: Sequence[str], path: str | Path, *,
                  xlabel: str, ylabel: str, title: str = "", log_x: bool = True, maximize_x: bool = False,
                  maximize_y: bool = True, groups: Sequence[str] | None = None) -> Path:
    """Scatter of the points (coloured by group) with their Pareto front drawn as a step line."""
    keep = [i for i, (x, y) in enumerate(points) if x is not None and y is not None
            and math.isfinite(x) and math.isfinite(y) and (x > 0 or not log_x)]
    groups = list(groups) if groups is not None else ["" for _ in points]
    with saved_figure(path) as ax:
        for group in dict.fromkeys(groups[i] for i in keep):
            members = [i for i in keep if groups[i] == group]
            ax.scatter([points[i][0] for i in members], [points[i][1] for i in members], label=group or None,
                       alpha=0.8)
        for i in keep:
            ax.annotate(labels[i], points[i], fontsize=6, xytext=(3, 3), textcoords="offset points")
        front = [keep[i] for i in pareto_front([points[i] for i in keep], maximize_x=maximize_x,
                                               maximize_y=maximize_y)]
        front.sort(key=lambda i: points[i][0])
        if front:
            ax.step([points[i][0] for i in front], [points[i][1] for i in front], where="post", color="black",
                    linewidth=1, linestyle="--", label="Pareto front")
            ax.scatter([points[i][0] for i in front], [points[i][1] for i in front], facecolors="none",
                       edgecolors="black", s=90)
        if log_x:
            ax.set_xscale("log")
        ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
        if any(groups[i] for i in keep) or front:
            ax.legend(fontsize=7)
    return Path(path)
