"""Seeded subsets of a split: ``--limit N`` (stratified by label) and few-shot draws (K per class).

A subset is drawn, never the first rows: a file sorted by label would otherwise give a
one-class subset and a wrong accuracy (no prompt read 0.000 on the first 500 rows of a
label-sorted SST-2 test file instead of 0.500). The same seed gives the same rows, so every prompt
of a comparison is scored on the same examples; the rows keep their order in the file.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Sequence

from .data import TaskDataError

LIMIT_SEED = 0  # the subset of `--limit N`: the same rows for every prompt and every run


def check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise TaskDataError(f"--limit must be at least 1 (or left out to score every example), got {limit}")


def by_class(labels: Sequence[int]) -> dict[int, list[int]]:
    rows = defaultdict(list)
    for row, label in enumerate(labels):
        rows[int(label)].append(row)
    return dict(sorted(rows.items()))


def stratified_indices(labels: Sequence[int], n: int, seed: int = LIMIT_SEED) -> list[int]:
    """``n`` rows drawn at random, each class in proportion to its share of ``labels`` (largest
    remainders get the rounding), returned in file order."""
    if n >= len(labels):
        return list(range(len(labels)))
    classes = by_class(labels)
    exact = {label: n * len(rows) / len(labels) for label, rows in classes.items()}
    counts = {label: int(share) for label, share in exact.items()}
    by_remainder = sorted(classes, key=lambda label: (exact[label] - counts[label], len(classes[label])), reverse=True)
    for label in by_remainder[:n - sum(counts.values())]:
        counts[label] += 1
    rng = random.Random(seed)
    chosen = [row for label, rows in classes.items() for row in rng.sample(rows, counts[label])]
    return sorted(chosen)


def random_indices(size: int, n: int, seed: int = LIMIT_SEED) -> list[int]:
    """``n`` of ``size`` rows drawn at random (for data without labels), in file order."""
    return sorted(random.Random(seed).sample(range(size), n)) if n < size else list(range(size))


def per_class_indices(labels: Sequence[int], k: int, seed: int | str, exclude: Sequence[int] = ()) -> list[int]:
    """``k`` rows of every class, drawn at random with ``seed`` from the rows not in ``exclude``
    (RLPrompt's few-shot protocol: K training and K dev examples per class), in file order.

    A class with fewer than ``k`` rows left gives all it has.
    """
    excluded = set(exclude)
    rng = random.Random(seed)
    chosen = []
    for rows in by_class(labels).values():
        rows = [row for row in rows if row not in excluded]
        chosen.extend(rng.sample(rows, min(k, len(rows))))
    return sorted(chosen)


def subset_note(n: int, total: int, split: str, stratified: bool, seed: int = LIMIT_SEED) -> str | None:
    """How a report names its subset: ``a random 300 of the 1821 test examples, stratified by label (seed 0)``."""
    if n >= total:
        return None
    how = ", stratified by label" if stratified else ""
    return f"a random {n} of the {total} {split} examples{how} (seed {seed})"
