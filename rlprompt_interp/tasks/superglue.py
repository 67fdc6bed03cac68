"""SuperGLUE BoolQ as a two-class task: passage + question, answered by the " no"/" yes" logits.

For causal LMs the class is read from the next-token logits after the input; for T5-style
encoder-decoders the prompt is prepended to the encoder input and the class is read at the first
decoder step (``scoring.next_token_logits`` does both). " yes"/" no" are single tokens for
GPT-2's BPE, SmolLM2 and T5's sentencepiece (which maps them to "▁yes"/"▁no").

Data comes from the hub (``super_glue``/``boolq``) or, offline, from FewGLUE's
``BoolQ/train.jsonl`` (Schick & Schütze 2021). FewGLUE ships only 32 labelled examples, so
offline the three splits are a deterministic partition of those 32 (see ``fewglue_splits``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import datasets

from .data import HubSource, TaskDataError, load_local_file, normalise
from .task import ClassificationTask
from .templates import Template

BOOLQ_TEMPLATE = "{prompt} {passage} Question: {question}? Answer:"
BOOLQ_FIELDS = ("passage", "question")

# FewGLUE offline: 32 examples shuffled once with this seed, then train / dev / test by these sizes
FEWGLUE_SHUFFLE_SEED = 0
FEWGLUE_SPLIT_SIZES = {"train": 16, "dev": 8, "test": 8}

# Online: the hub has no labelled test split, so validation is the test set and the last 500
# training examples are the dev set.
BOOLQ_HUB = HubSource("super_glue", name="boolq",
                      splits={"train": "train[:-500]", "dev": "train[-500:]", "test": "validation"},
                      columns={"passage": "passage", "question": "question", "label": "label"})


@dataclass(frozen=True)
class FewGlueTask(ClassificationTask):
    """A SuperGLUE task whose local data is FewGLUE's single ``train.jsonl``, partitioned into splits."""

    fewglue_name: str = "BoolQ"

    def _load(self, split: str) -> datasets.Dataset:
        if self.data_dir is None:
            return super()._load(split)
        path = fewglue_file(self.data_dir, self.fewglue_name)
        rows = fewglue_splits(load_local_file(path))[split]
        data = normalise(rows, where=f"{path} ({split}: {describe_fewglue_split(split)})",
                         fields=self.template.fields, label_names=list(self.label_names))
        return data.cast_column("label", datasets.Value("int64"))  # FewGLUE labels are JSON booleans


def fewglue_file(data_dir: str | Path, task_folder: str) -> Path:
    """``<data_dir>/<Task>/train.jsonl``; ``data_dir`` may be the FewGLUE root, the task folder or the file."""
    root = Path(data_dir).expanduser()
    for candidate in (root, root / "train.jsonl", root / task_folder / "train.jsonl",
                      root / "fewglue" / task_folder / "train.jsonl"):
        if candidate.is_file():
            return candidate
    raise TaskDataError(
        f"no FewGLUE file for {task_folder} under {root}: expected {root / task_folder / 'train.jsonl'} "
        "(FewGLUE's layout, e.g. --data-dir ../shared/data/fewglue); without --data-dir the task is read from the hub"
    )


def fewglue_splits(data: datasets.Dataset) -> dict[str, datasets.Dataset]:
    """Train / dev / test as a fixed partition of FewGLUE's labelled examples.

    The rows are shuffled with ``FEWGLUE_SHUFFLE_SEED`` and cut into ``FEWGLUE_SPLIT_SIZES``
    (16 / 8 / 8 for the 32 examples FewGLUE has); the partition is the same on every machine.
    With fewer rows the test split takes what remains after train and dev, and at least one row
    per split is required.
    """
    need = len(FEWGLUE_SPLIT_SIZES)
    if len(data) < need:
        raise TaskDataError(f"FewGLUE data has {len(data)} examples; at least {need} are needed (one per split)")
    shuffled = data.shuffle(seed=FEWGLUE_SHUFFLE_SEED)
    n_train = min(FEWGLUE_SPLIT_SIZES["train"], len(data) - 2)
    n_dev = min(FEWGLUE_SPLIT_SIZES["dev"], len(data) - n_train - 1)
    n_test = min(FEWGLUE_SPLIT_SIZES["test"], len(data) - n_train - n_dev)
    return {"train": shuffled.select(range(n_train)),
            "dev": shuffled.select(range(n_train, n_train + n_dev)),
            "test": shuffled.select(range(n_train + n_dev, n_train + n_dev + n_test))}


def describe_fewglue_split(split: str) -> str:
    return (f"FewGLUE has no {split} file; this is a fixed {FEWGLUE_SPLIT_SIZES[split]}-example slice of "
            f"train.jsonl shuffled with seed {FEWGLUE_SHUFFLE_SEED}")


def boolq_task(*, data_dir: str | None = None, template: str | None = None,
               verbalizers: list[str] | None = None) -> FewGlueTask:
    """BoolQ: label 0 = false (" no"), 1 = true (" yes"); the template needs {passage} and {question}."""
    task = FewGlueTask(name="boolq", verbalizers=(" no", " yes"), label_names=("false", "true"),
                       template=Template(template or BOOLQ_TEMPLATE, BOOLQ_FIELDS), hub=BOOLQ_HUB,
                       data_dir=str(data_dir) if data_dir is not None else None, fewglue_name="BoolQ")
    return task.with_options(verbalizers=verbalizers) if verbalizers else task
