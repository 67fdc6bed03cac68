"""Read task examples through ``datasets``, from local TSV/CSV/JSONL files or from the hub.

Both sources end in the same place: a ``datasets.Dataset`` with the task's text fields and an
integer ``label`` column, checked for the right columns, labels in range, and at least one row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import datasets

from ..notices import warn

SPLITS = ("train", "dev", "test")
TEXT_ALIASES = {"sentence": "text"}


class TaskDataError(ValueError):
    """Task data that is missing, empty or shaped wrongly; the message names the fix."""


@dataclass(frozen=True)
class HubSource:
    """Where a task lives on the Hugging Face hub, and how its columns map to ours."""

    path: str
    name: str | None = None
    splits: dict = field(default_factory=lambda: {"train": "train", "dev": "validation", "test": "test"})
    columns: dict = field(default_factory=lambda: {"sentence": "text", "label": "label"})
    label_map: dict | None = None  # hub label -> our label, where the hub orders classes differently


def builder_for(path: Path) -> tuple[str, dict]:
    """The ``datasets`` packaged builder and its options for a local file, by extension."""
    suffix = path.suffix.lower()
    if suffix == ".tsv":
        return "csv", {"delimiter": "\t", "keep_default_na": False}
    if suffix == ".csv":
        return "csv", {"keep_default_na": False}
    if suffix in (".jsonl", ".json"):
        return "json", {}
    raise TaskDataError(f"cannot read {path}: use a .tsv, .csv or .jsonl file")


def load_local_file(path: str | Path) -> datasets.Dataset:
    path = Path(path).expanduser()
    if not path.is_file():
        raise TaskDataError(f"data file {path} does not exist")
    builder, options = builder_for(path)
    if _count_nonblank_lines(path, stop=2) < (2 if builder == "csv" else 1):
        raise TaskDataError(f"{path} has no examples")
    try:
        return datasets.load_dataset(builder, data_files=str(path), split="train", **options)
    except Exception as error:  # datasets wraps parser errors in several exception types
        raise TaskDataError(f"could not read {path}: {error}") from error


def _count_nonblank_lines(path: Path, stop: int) -> int:
    count = 0
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            count += bool(line.strip())
            if count >= stop:
                break
    return count


def load_hub_split(source: HubSource, split: str) -> datasets.Dataset:
    if split not in source.splits:
        raise TaskDataError(f"the hub dataset {source.path} has no {split!r} split; available: {sorted(source.splits)}")
    try:
        data = datasets.load_dataset(source.path, source.name, split=source.splits[split])
    except Exception as error:
        raise TaskDataError(
            f"could not load {source.path} from the Hugging Face hub ({error.__class__.__name__}); "
            "offline, pass --data-dir with local files (for example ../shared/data/few-shot)"
        ) from error
    renames = {theirs: ours for ours, theirs in source.columns.items() if theirs != ours}
    data = data.select_columns(list(source.columns.values())).rename_columns(renames)
    if source.label_map:
        data = data.map(lambda row: {"label": source.label_map[row["label"]]})
    return data


def normalise(data: datasets.Dataset, *, where: str, fields: tuple[str, ...], label_names: list[str]) -> datasets.Dataset:
    """Check columns and labels; map string labels to indices; keep only what the task uses."""
    wanted = [*fields, "label"]
    for name in fields:  # RLPrompt's AG News files name the text column "text" in some splits
        if name not in data.column_names and name in TEXT_ALIASES and TEXT_ALIASES[name] in data.column_names:
            data = data.rename_column(TEXT_ALIASES[name], name)
    missing = [c for c in wanted if c not in data.column_names]
    if missing:
        raise TaskDataError(
            f"{where} has columns {data.column_names} but the task needs {wanted} (missing {missing}); "
            "rename the columns, or for your own task set text_column/label_column"
        )
    if len(data) == 0:
        raise TaskDataError(f"{where} has no examples")
    data = data.select_columns(wanted)
    indices = label_indices(data["label"], where=where, label_names=label_names)
    data = data.remove_columns("label").add_column("label", indices)
    for name in fields:
        data = data.map(lambda row: {name: "" if row[name] is None else str(row[name])})
    return drop_blank_examples(data, where=where, fields=fields)


def label_indices(labels, *, where: str, label_names: list[str]) -> list[int]:
    """Each row's label as a class index: an integer (also one written as text, as CSV and TSV hold it) or one of
    ``label_names`` (a task's own, else its verbalizers without their spaces, in class order).

    A label that is neither, or an index outside the classes, is named with its row (counting from 1 after any
    header), so a typo in one row of a large file is found at once."""
    names = {name: index for index, name in enumerate(label_names)}
    indices, outside = [], {}
    for row, value in enumerate(labels, start=1):
        if isinstance(value, str) and value.strip() in names:
            indices.append(names[value.strip()])
            continue
        index = _as_integer(value)
        if index is None:
            raise TaskDataError(f"{where}: example {row} has the label {value!r}, which is neither a class index "
                                f"(0..{len(label_names) - 1}) nor a label name {label_names}; fix the row, or name "
                                "the classes with label_names in task.json (in verbalizer order)")
        if not 0 <= index < len(label_names):
            outside.setdefault(index, row)
        indices.append(index)
    if outside:
        first = min(outside.values())
        raise TaskDataError(
            f"{where} has labels {sorted(outside)[:5]} outside 0..{len(label_names) - 1} (first at example {first}); "
            f"the task has {len(label_names)} classes ({label_names})"
        )
    return indices


def _as_integer(value) -> int | None:
    """``3``, ``"3"``, ``3.0`` -> 3; JSON's ``false``/``true`` -> 0/1 (FewGLUE's yes/no labels); anything else (a
    name, a fraction, a missing value) -> None."""
    if value is None:
        return None
    if isinstance(value, int):  # bool included
        return int(value)
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def drop_blank_examples(data: datasets.Dataset, *, where: str, fields: tuple[str, ...]) -> datasets.Dataset:
    """Leave out examples with an empty or white-space-only text field, with a warning naming them.

    Done here, at load time, so every path sees the same examples: the training reward (whose
    example cache needs text before the prompt), evaluation and the continuous agents.
    """
    blank = [row for row, example in enumerate(data.select_columns(list(fields)))
             if any(not example[name].strip() for name in fields)]
    if not blank:
        return data
    shown = ", ".join(str(row + 1) for row in blank[:10]) + (f" and {len(blank) - 10} more" if len(blank) > 10 else "")
    field_names = " or ".join(repr(name) for name in fields)
    if len(blank) == len(data):
        raise TaskDataError(f"{where}: every example has an empty {field_names} text; is the text column right?")
    warn(f"{where}: left out {len(blank)} example(s) whose {field_names} text is empty or white space only "
         f"(example {shown}, counting from 1 after any header)")
    keep = sorted(set(range(len(data))) - set(blank))
    return data.select(keep)


def few_shot_files(data_dir: str | Path, task: str, seed: str) -> dict[str, Path]:
    """The split files of RLPrompt's few-shot layout: ``<task>/<seed>/{train,dev}.tsv``, ``<task>/test.tsv``
    (or ``<task>/<seed>/test.tsv``, where RLPrompt's repository keeps a copy of it in each split's folder).

    ``data_dir`` may be the folder holding every task or the task's own folder.
    """
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise TaskDataError(f"data folder {root} does not exist; pass --data-dir with RLPrompt's few-shot folders "
                            "(<task>/<shots>-<seed>/{train,dev}.tsv, <task>/test.tsv), or leave it out to read the task "
                            "from the hub (--shots 16 draws RLPrompt's 16-shot split there)")
    task_dir = root / task if (root / task).is_dir() else root
    test = task_dir / "test.tsv"
    if not test.is_file() and (task_dir / seed / "test.tsv").is_file():
        test = task_dir / seed / "test.tsv"
    return {"train": task_dir / seed / "train.tsv", "dev": task_dir / seed / "dev.tsv", "test": test}


def available_seeds(task_dir: Path) -> list[str]:
    return sorted(p.name for p in task_dir.iterdir() if p.is_dir() and (p / "train.tsv").exists())
