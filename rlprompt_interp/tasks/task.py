"""A classification task: examples, a template and one verbalizer token per class."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import datasets

from .data import SPLITS, HubSource, TaskDataError, available_seeds, few_shot_files, load_hub_split, load_local_file, normalise
from ..notices import warn
from .sampling import LIMIT_SEED, check_limit, per_class_indices, stratified_indices, subset_note
from .templates import Template


class VerbalizerError(ValueError):
    """A verbalizer that is not exactly one token of the model's tokenizer."""


@dataclass(frozen=True)
class ClassificationTask:
    """Examples + template + verbalizers; the class is the verbalizer with the highest next-token logit.

    Data comes from exactly one source: ``files`` (split -> local file), a few-shot folder
    (``data_dir`` + ``seed``, RLPrompt's layout) or ``hub``. From the hub, ``shots`` = K draws
    RLPrompt's few-shot protocol: K training and K dev examples per class from the hub's train
    split with ``split_seed``, and the test split whole (``few_shot_from_hub``).
    """

    name: str
    verbalizers: tuple[str, ...]
    template: Template
    label_names: tuple[str, ...] = ()
    hub: HubSource | None = None
    data_dir: str | None = None
    seed: str = "16-42"
    files: dict = field(default_factory=dict)
    columns: dict = field(default_factory=dict)  # our column -> the local files' column
    shots: int | None = None  # from the hub: K training and K dev examples per class (None: the hub's splits)
    split_seed: int = 42  # which K-shot draw
    description: str | None = None  # what the task asks, in words (task.json "description"); see describe()
    _loaded: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self):
        if len(self.verbalizers) < 2:
            raise VerbalizerError(f"task {self.name!r} needs at least two verbalizers, got {list(self.verbalizers)}")
        if len(set(self.verbalizers)) != len(self.verbalizers):
            raise VerbalizerError(f"task {self.name!r} has repeated verbalizers {list(self.verbalizers)}")
        if not self.label_names:
            object.__setattr__(self, "label_names", tuple(v.strip() for v in self.verbalizers))
        if len(self.label_names) != len(self.verbalizers):
            raise VerbalizerError(
                f"task {self.name!r} has {len(self.label_names)} classes but {len(self.verbalizers)} verbalizers"
            )

    @property
    def num_classes(self) -> int:
        return len(self.verbalizers)

    def describe(self) -> str:
        """What the task asks, as text a policy can write its prompt after: the task's own description,
        or one derived from its answers, e.g. "Classify this text as negative or positive."."""
        if self.description:
            return self.description
        answers = [verbalizer.strip() for verbalizer in self.verbalizers]
        return f"Classify this text as {', '.join(answers[:-1])} or {answers[-1]}."

    def with_options(self, *, template: str | None = None, verbalizers: list[str] | None = None,
                     data_dir: str | None = None, seed: str | None = None, shots: int | None = None,
                     split_seed: int | None = None) -> "ClassificationTask":
        """A copy with a different template, verbalizers or data source (``None`` keeps the current one)."""
        changes = {key: value for key, value in (("shots", shots), ("split_seed", split_seed)) if value is not None}
        if shots is not None and shots < 1:
            raise TaskDataError(f"--shots must be at least 1 (examples per class), got {shots}")
        if template is not None:
            changes["template"] = Template(template, self.template.fields)
        if verbalizers is not None:
            changes["verbalizers"] = tuple(verbalizers)
            if len(verbalizers) != len(self.label_names):
                raise VerbalizerError(
                    f"task {self.name!r} has {len(self.label_names)} classes ({list(self.label_names)}) "
                    f"but {len(verbalizers)} verbalizers were given"
                )
        if data_dir is not None:
            changes["data_dir"] = str(data_dir)
        if seed is not None:
            changes["seed"] = seed
        return replace(self, **changes)

    def with_columns(self, **columns: str) -> "ClassificationTask":
        """A copy of a task on local files that reads other columns (``sentence="review", label="stars"``)."""
        return replace(self, columns={**self.columns, **columns})

    def has_split(self, split: str) -> bool:
        """Whether the task names a source for ``split`` (whether its file exists is ``load_split``'s to say)."""
        if self.files:
            return split in self.files
        if self.data_dir is not None or (self.hub is not None and self.shots is not None):
            return True
        return self.hub is not None and split in self.hub.splits

    def check_splits(self, splits) -> None:
        """Read each of ``splits`` now (files, columns, labels), so a run stops on a bad one before any model
        loads rather than after its training; a split the task has no source for is an error."""
        for split in splits:
            if not self.has_split(split):
                sources = sorted(self.files) if self.files else [s for s in SPLITS if self.has_split(s)]
                raise TaskDataError(f"task {self.name!r} has no {split} split (it has {sources})")
            self.load_split(split)

    def verbalizer_ids(self, tokenizer) -> list[int]:
        """The single token id of each verbalizer, or an error naming the ones that are not one token."""
        ids, bad = [], []
        for word in self.verbalizers:
            tokens = tokenizer.encode(word, add_special_tokens=False)
            if len(tokens) != 1:
                bad.append((word, tokenizer.convert_ids_to_tokens(tokens)))
            else:
                ids.append(tokens[0])
        if bad:
            details = "; ".join(f"{w!r} -> {len(t)} tokens {t}" for w, t in bad)
            hint = ""
            if any(not w.startswith(" ") for w, _ in bad):
                hint = " Words in running text usually carry a leading space: try ' " + bad[0][0].strip() + "'."
            raise VerbalizerError(
                f"each verbalizer of task {self.name!r} must be exactly one token of this tokenizer: {details}.{hint}"
            )
        if len(set(ids)) != len(ids):
            raise VerbalizerError(f"verbalizers {list(self.verbalizers)} map to repeated token ids {ids}")
        return ids

    def load_split(self, split: str, limit: int | None = None, seed: int = LIMIT_SEED) -> datasets.Dataset:
        """The examples of ``split`` (train, dev or test) with the text fields and an integer label.

        ``limit``: a random subset of that many examples, stratified by label and drawn with ``seed``
        (``sampling.stratified_indices``), never the first rows; a warning when it holds one class.
        """
        if split not in SPLITS:
            raise TaskDataError(f"unknown split {split!r}; choose one of {list(SPLITS)}")
        check_limit(limit)
        if split not in self._loaded:
            self._loaded[split] = self._load(split)
        data = self._loaded[split]
        if limit is not None and limit < len(data):
            data = data.select(stratified_indices(data["label"], limit, seed))
            classes = sorted(set(data["label"]))
            if len(classes) < 2:
                warn(f"{self.subset_note(split, limit, seed)} of task {self.name!r} hold a single class "
                     f"({self.label_names[classes[0]]}): their accuracy says little about a prompt; raise --limit")
        return data

    def subset_note(self, split: str, limit: int | None, seed: int = LIMIT_SEED) -> str | None:
        """What ``load_split(split, limit)`` holds, for reports (None: the whole split)."""
        total = len(self.load_split(split))
        return None if limit is None else subset_note(min(limit, total), total, split, stratified=True, seed=seed)

    def _load(self, split: str) -> datasets.Dataset:
        fields = self.template.fields
        if self.files:
            if split not in self.files:
                raise TaskDataError(f"task {self.name!r} has no {split!r} file; given splits: {sorted(self.files)}")
            where = str(self.files[split])
            raw = load_local_file(self.files[split])
            missing = [theirs for theirs in self.columns.values() if theirs not in raw.column_names]
            if missing:
                raise TaskDataError(f"{where} has columns {raw.column_names} but not {missing}, which task "
                                    f"{self.name!r} reads: name the right ones with --text-column/--label-column "
                                    "(text_column/label_column in a task.json)")
            renames = {theirs: ours for ours, theirs in self.columns.items() if theirs != ours and theirs in raw.column_names}
            raw = raw.rename_columns(renames)
        elif self.data_dir is not None:
            files = few_shot_files(self.data_dir, self.name, self.seed)
            path = files[split]
            if not path.is_file():
                task_dir = path.parent if split == "test" else path.parent.parent
                seeds = available_seeds(task_dir) if task_dir.is_dir() else []
                raise TaskDataError(
                    f"no {split} split for task {self.name!r} at {path}"
                    + (f"; seeds found in {task_dir}: {seeds}" if seeds else f"; is --data-dir right? ({self.data_dir})")
                )
            where, raw = str(path), load_local_file(path)
        elif self.hub is not None and self.shots is not None:
            return self.few_shot_from_hub(split)
        elif self.hub is not None:
            where, raw = f"{self.hub.path} ({split})", load_hub_split(self.hub, split)
        else:
            raise TaskDataError(f"task {self.name!r} has no data source: pass --data-dir or data files")
        return normalise(raw, where=where, fields=fields, label_names=list(self.label_names))

    def few_shot_from_hub(self, split: str) -> datasets.Dataset:
        """RLPrompt's K-shot protocol on the hub's data: K training and K other dev examples per class,
        drawn with ``split_seed`` from the hub's train split; the hub's test split whole."""
        if split == "test":
            return normalise(load_hub_split(self.hub, "test"), where=f"{self.hub.path} (test)",
                             fields=self.template.fields, label_names=list(self.label_names))
        if "hub_train" not in self._loaded:
            self._loaded["hub_train"] = normalise(load_hub_split(self.hub, "train"), where=f"{self.hub.path} (train)",
                                                  fields=self.template.fields, label_names=list(self.label_names))
        full = self._loaded["hub_train"]
        labels = full["label"]
        train = per_class_indices(labels, self.shots, seed=self.split_seed)
        rows = train if split == "train" else per_class_indices(labels, self.shots, seed=f"{self.split_seed}-dev",
                                                                exclude=train)
        counts = Counter(labels[i] for i in rows)
        short = {name: counts[label] for label, name in enumerate(self.label_names) if counts[label] < self.shots}
        if not rows:
            raise TaskDataError(f"{self.hub.path} (train) has no examples left for a {self.shots}-shot {split} split; "
                                "use fewer --shots")
        if short:
            warn(f"{self.hub.path} (train) has fewer than {self.shots} examples left for the {split} split of classes "
                 f"{short}; the {split} split holds what there is")
        return full.select(rows)

    def describe_source(self) -> str:
        """Where the examples come from, in a line (for scripts that say which data they use)."""
        if self.files:
            return f"files {', '.join(f'{split}={path}' for split, path in self.files.items())}"
        if self.data_dir is not None:
            return f"local few-shot files in {self.data_dir} (split {self.seed}, test.tsv whole)"
        if self.hub is not None and self.shots is not None:
            return (f"the hub's {self.hub.path}: {self.shots} training and {self.shots} dev examples per class drawn "
                    f"from its train split (seed {self.split_seed}), its test split whole")
        return f"the hub's {self.hub.path} splits" if self.hub is not None else "no data source"

    def format(self, example: dict, prompt: str, mask: str | None = None) -> str:
        return self.template.format(example, prompt, mask)


def task_from_files(name: str, files: dict[str, str | Path], *, template: str, verbalizers: list[str],
                    label_names: list[str] | None = None, text_column: str = "sentence",
                    label_column: str = "label", description: str | None = None) -> ClassificationTask:
    """A user's own task from local files (TSV, CSV or JSONL), with the text and label columns named."""
    files = {split: Path(path).expanduser() for split, path in files.items()}
    unknown = set(files) - set(SPLITS)
    if unknown:
        raise TaskDataError(f"unknown splits {sorted(unknown)} for task {name!r}; use {list(SPLITS)}")
    columns = {"sentence": text_column, "label": label_column}
    return ClassificationTask(name=name, verbalizers=tuple(verbalizers), template=Template(template),
                              label_names=tuple(label_names or ()), files=files, columns=columns,
                              description=description)
