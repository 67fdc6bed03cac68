"""SuperGLUE tasks (BoolQ, CB, RTE, COPA, WSC) as classification tasks read from next-token logits.

BoolQ: passage + question, answered by the " no"/" yes" logits. CB and RTE: premise + hypothesis,
" yes"/" no" (CB adds " maybe" for neutral). COPA: premise, cause-or-effect question and two
choices, " first"/" second". WSC: text, a noun phrase and a pronoun, " no"/" yes" for whether the
pronoun refers to the noun phrase. Every verbalizer is one token for GPT-2's BPE and SmolLM2.

For causal LMs the class is read from the next-token logits after the input; for T5-style
encoder-decoders the prompt is prepended to the encoder input and the class is read at the first
decoder step (``scoring.next_token_logits`` does both). " yes"/" no" are single tokens for
GPT-2's BPE, SmolLM2 and T5's sentencepiece (which maps them to "▁yes"/"▁no").

Data comes from the hub (``super_glue``/``<task>``) or, offline, from FewGLUE's
``<Task>/train.jsonl`` (Schick & Schütze 2021). FewGLUE ships only 32 labelled examples, so
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



@dataclass(frozen=True)
class FewGlueTask(ClassificationTask):
    """A SuperGLUE task whose local data is FewGLUE's single ``train.jsonl``, partitioned into splits."""

    fewglue_name: str = "BoolQ"

    def _load(self, split: str) -> datasets.Dataset:
        if self.data_dir is None:
            return super()._load(split)
        path = fewglue_file(self.data_dir, self.fewglue_name)
        rows = fewglue_splits(renamed_columns(load_local_file(path), self.columns))[split]
        data = normalise(rows, where=f"{path} ({split}: {describe_fewglue_split(split)})",
                         fields=self.template.fields, label_names=list(self.label_names))
        return data.cast_column("label", datasets.Value("int64"))  # FewGLUE labels are JSON booleans


def renamed_columns(data: datasets.Dataset, columns: dict) -> datasets.Dataset:
    """Our column names from the file's (``columns``: ours -> theirs); a dotted name such as
    ``target.span1_text`` reaches into a nested field (FewGLUE's WSC keeps its spans under ``target``)."""
    if any("." in theirs for theirs in columns.values()):
        data = data.flatten()
    renames = {theirs: ours for ours, theirs in columns.items() if theirs != ours and theirs in data.column_names}
    return data.rename_columns(renames)


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


# BoolQ, and CB, RTE, COPA and WSC (Interpreting Prompt-Tuning Across SuperGLUE Tasks). Online, the hub's
# validation split is the test set (its test labels are hidden) and the end of train is the dev set.
CB_TEMPLATE = "{prompt} Premise: {premise} Hypothesis: {hypothesis} Does the premise entail the hypothesis? Answer:"
RTE_TEMPLATE = CB_TEMPLATE
COPA_TEMPLATE = "{prompt} Premise: {premise} What was the {question}? First: {choice1} Second: {choice2} Answer:"
WSC_TEMPLATE = '{prompt} {text} Question: does "{span2_text}" refer to "{span1_text}"? Answer:'
NLI_FIELDS = ("premise", "hypothesis")
COPA_FIELDS = ("premise", "question", "choice1", "choice2")
WSC_FIELDS = ("text", "span1_text", "span2_text")


def _hub(name: str, fields: tuple[str, ...], dev_size: int) -> HubSource:
    return HubSource("super_glue", name=name,
                     splits={"train": f"train[:-{dev_size}]", "dev": f"train[-{dev_size}:]", "test": "validation"},
                     columns={field: field for field in (*fields, "label")})


# name -> FewGLUE folder, template, fields, verbalizers, label names (in the hub's label order), hub source,
# and the FewGLUE file's columns where they differ from ours
SUPERGLUE_SPECS = {
    "boolq": dict(folder="BoolQ", template=BOOLQ_TEMPLATE, fields=BOOLQ_FIELDS, verbalizers=(" no", " yes"),
                  label_names=("false", "true"), hub=_hub("boolq", BOOLQ_FIELDS, 500)),
    "cb": dict(folder="CB", template=CB_TEMPLATE, fields=NLI_FIELDS, verbalizers=(" yes", " no", " maybe"),
               label_names=("entailment", "contradiction", "neutral"), hub=_hub("cb", NLI_FIELDS, 50)),
    "rte": dict(folder="RTE", template=RTE_TEMPLATE, fields=NLI_FIELDS, verbalizers=(" yes", " no"),
                label_names=("entailment", "not_entailment"), hub=_hub("rte", NLI_FIELDS, 250)),
    "copa": dict(folder="COPA", template=COPA_TEMPLATE, fields=COPA_FIELDS, verbalizers=(" first", " second"),
                 label_names=("choice1", "choice2"), hub=_hub("copa", COPA_FIELDS, 50)),
    "wsc": dict(folder="WSC", template=WSC_TEMPLATE, fields=WSC_FIELDS, verbalizers=(" no", " yes"),
                label_names=("false", "true"), hub=_hub("wsc.fixed", WSC_FIELDS, 50),
                columns={"span1_text": "target.span1_text", "span2_text": "target.span2_text"}),
}


def superglue_task(name: str, *, data_dir: str | None = None, template: str | None = None,
                   verbalizers: list[str] | None = None) -> FewGlueTask:
    """One of ``SUPERGLUE_SPECS`` (boolq, cb, rte, copa, wsc); FewGLUE with ``data_dir``, else the hub."""
    spec = SUPERGLUE_SPECS[name]
    task = FewGlueTask(name=name, verbalizers=spec["verbalizers"], label_names=spec["label_names"],
                       template=Template(template or spec["template"], spec["fields"]), hub=spec["hub"],
                       data_dir=str(data_dir) if data_dir is not None else None, fewglue_name=spec["folder"],
                       columns=dict(spec.get("columns", {})))
    return task.with_options(verbalizers=verbalizers) if verbalizers else task
