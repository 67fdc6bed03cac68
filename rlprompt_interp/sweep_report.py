"""Summaries of sweep records: mean ± std over seeds, bootstrap intervals, markdown tables, Pareto fronts,
trade-off plots.

Kept apart from :mod:`rlprompt_interp.sweeps` (which runs cells) so a table can be rebuilt from a
finished output folder without loading a model.
"""

from __future__ import annotations

import contextlib
import math
import statistics
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np


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



def without_records(rows: list[dict]) -> list[dict]:
    """Summary rows without the ``records`` ``summarize`` groups in them (each record is stored once, elsewhere)."""
    return [{key: value for key, value in row.items() if key != "records"} for row in rows]

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


# Columns for ``markdown_table``: ``(header, row -> cell)``, declared rather than written out as lambdas.
def column(key: str, header: str | None = None, fmt: Callable[[Any], Any] = str) -> tuple[str, Callable]:
    """The row's ``key`` (through ``fmt``) under ``header`` (default: the key)."""
    return header or key, lambda row: fmt(row[key])


def mean_std_column(header: str, metric: str, digits: int = 3) -> tuple[str, Callable]:
    """``mean ± std`` over seeds of a ``summarize`` row's ``metric``; ``-`` where no record has it."""
    return header, lambda row: format_mean_std(row[f"{metric}_mean"], row[f"{metric}_std"], digits)


def first_seed(key: str, header: str) -> tuple[str, Callable]:
    """A value of the first record of a ``summarize`` row (a prompt text, say: one seed's, not an average)."""
    return header, lambda row: row["records"][0].get(key, "")


SEEDS_COLUMN = ("seeds", lambda r: r["n"])  # how many records a ``summarize`` row averages
# columns of the rows of ``summarize_with_log_perplexity``
ACCURACY_COLUMN = mean_std_column("test accuracy (mean ± std)", "test_accuracy")
PERPLEXITY_COLUMN = ("prompt perplexity (geometric mean)", lambda r: "-" if math.isnan(r["log_perplexity_mean"])
                     else format_number(math.exp(r["log_perplexity_mean"])))
SAMPLE_COLUMN = ("sample prompt (best seed)", lambda r: repr(max(r["records"], key=lambda x: x["test_accuracy"])["prompt"]))


BOOTSTRAP_DRAWS = 2000


def seed_arrays(records: Sequence[Mapping], split: str = "test") -> tuple[np.ndarray | None, list[float] | None]:
    """One arm's seeds as the bootstrap reads them: ``[seeds, sentences]`` 0/1 from each record's
    ``<split>_correct`` string (None when a record lacks it) and the seeds' ``log_perplexity`` (None when
    a prompt has none, e.g. an empty one)."""
    strings = [record.get(f"{split}_correct") for record in records]
    correct = None if any(s is None for s in strings) else np.array([[c == "1" for c in s] for s in strings], float)
    log_ppl = [record.get("log_perplexity") for record in records]
    return correct, None if any(v is None for v in log_ppl) else log_ppl


def interval(draws: np.ndarray, estimate: float, transform: Callable[[float], float] = float) -> dict:
    """``{"estimate", "low", "high"}``: the estimate and the 2.5th and 97.5th percentiles of its bootstrap
    ``draws``, each through ``transform`` (``math.exp`` for a quantity drawn as its log)."""
    low, high = np.percentile(draws, [2.5, 97.5])
    return {"estimate": transform(estimate), "low": transform(low), "high": transform(high)}


def resample_counts(rng: np.random.Generator, size: int, draws: int) -> np.ndarray:
    """``[draws, size]``: how often each of ``size`` items is picked in each resample of ``size`` with replacement."""
    return rng.multinomial(size, np.full(size, 1.0 / size), size=draws)


def resampled_arm(correct: np.ndarray, log_ppl: Sequence[float] | None, sentence_counts: np.ndarray,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    """One arm's bootstrap draws: mean accuracy (over resampled seeds, each scored on the resampled
    sentences ``sentence_counts``) and, over the same seeds, mean log-perplexity (None without one)."""
    seeds, sentences = correct.shape
    seed_counts = resample_counts(rng, seeds, len(sentence_counts))
    accuracy = ((correct @ sentence_counts.T).T * seed_counts).sum(1) / (seeds * sentences)
    return accuracy, None if log_ppl is None else seed_counts @ np.asarray(log_ppl, float) / seeds


def arm_bootstrap(correct: np.ndarray, log_ppl: Sequence[float] | None = None, *, draws: int = BOOTSTRAP_DRAWS,
                  seed: int = 0) -> dict:
    """95% intervals of one arm's mean test accuracy and geometric-mean prompt perplexity
    (``perplexity``: None without ``log_ppl``). ``correct``: ``[seeds, sentences]`` 0/1; each draw
    resamples both the seeds and the test sentences, the two sources of error in the mean."""
    rng = np.random.default_rng(seed)
    correct = np.asarray(correct, float)
    accuracy, log_ppl_draws = resampled_arm(correct, log_ppl, resample_counts(rng, correct.shape[1], draws), rng)
    return {"accuracy": interval(accuracy, correct.mean()),
            "perplexity": None if log_ppl is None else interval(log_ppl_draws, float(np.mean(log_ppl)), math.exp)}


def paired_bootstrap(arm_correct: np.ndarray, arm_log_ppl: Sequence[float] | None, base_correct: np.ndarray,
                     base_log_ppl: Sequence[float] | None, *, draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> dict:
    """An arm against a base arm on the same test sentences, with 95% percentile-bootstrap intervals:

    - ``accuracy_difference``: mean accuracy of the arm minus the base's, in points;
    - ``perplexity_ratio``: the base's geometric-mean prompt perplexity over the arm's (how many times
      lower the arm's is; None without both arms' perplexities).

    Each of ``draws`` draws resamples the test sentences once for both arms (they are the same
    sentences: paired, so how hard the drawn sentences are cancels out of the difference) and each
    arm's seeds on their own (the arms' seeds are separate training runs, not pairs). A prompt's
    perplexity does not depend on the sentences, so only the seeds move the ratio; with one seed per
    arm it is exact. ``*_correct``: ``[seeds, sentences]`` 0/1; ``*_log_ppl``: per seed.
    """
    arm_correct, base_correct = np.asarray(arm_correct, float), np.asarray(base_correct, float)
    if arm_correct.shape[1] != base_correct.shape[1]:
        raise ValueError(f"the arms were scored on different test sets ({arm_correct.shape[1]} and "
                         f"{base_correct.shape[1]} sentences)")
    rng = np.random.default_rng(seed)
    sentences = resample_counts(rng, arm_correct.shape[1], draws)
    arm_accuracy, arm_log = resampled_arm(arm_correct, arm_log_ppl, sentences, rng)
    base_accuracy, base_log = resampled_arm(base_correct, base_log_ppl, sentences, rng)
    difference = interval(100 * (arm_accuracy - base_accuracy), 100 * (arm_correct.mean() - base_correct.mean()))
    ratio = None if arm_log is None or base_log is None else interval(
        base_log - arm_log, float(np.mean(base_log_ppl) - np.mean(arm_log_ppl)), math.exp)
    return {"accuracy_difference": difference, "perplexity_ratio": ratio}


def format_interval(value: Mapping | None, fmt: Callable[[float], str] = format_number) -> str:
    """``estimate [low, high]``, each number through ``fmt``; ``-`` for None."""
    if value is None:
        return "-"
    return f"{fmt(value['estimate'])} [{fmt(value['low'])}, {fmt(value['high'])}]"


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
                  maximize_y: bool = True, groups: Sequence[str] | None = None,
                  xerr: Sequence[tuple[float, float] | None] | None = None,
                  yerr: Sequence[tuple[float, float] | None] | None = None) -> Path:
    """Scatter of the points (coloured by group) with their Pareto front drawn as a step line.

    ``xerr`` / ``yerr``: per point, the ``(low, high)`` ends of an error bar (an interval, not distances
    from the point), or None for no bar."""
    keep = [i for i, (x, y) in enumerate(points) if x is not None and y is not None
            and math.isfinite(x) and math.isfinite(y) and (x > 0 or not log_x)]
    groups = list(groups) if groups is not None else ["" for _ in points]

    def distances(bounds, members, axis):  # matplotlib's [2, n] lengths below and above each point
        if bounds is None:
            return None
        value = [points[i][axis] for i in members]
        ends = [bounds[i] or (v, v) for i, v in zip(members, value)]
        return np.clip([[v - low for v, (low, _) in zip(value, ends)], [high - v for v, (_, high) in zip(value, ends)]],
                       0, None)

    with saved_figure(path) as ax:
        for group in dict.fromkeys(groups[i] for i in keep):
            members = [i for i in keep if groups[i] == group]
            xs, ys = [points[i][0] for i in members], [points[i][1] for i in members]
            dots = ax.scatter(xs, ys, label=group or None, alpha=0.8)
            if xerr is not None or yerr is not None:
                ax.errorbar(xs, ys, xerr=distances(xerr, members, 0), yerr=distances(yerr, members, 1), fmt="none",
                            ecolor=dots.get_facecolor()[0], alpha=0.6, capsize=2, linewidth=1)
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
