"""Text style transfer tasks: rewrite a sentence of one style into another (Yelp negative <-> positive).

The data follows the layout of Shen et al. (2017) as RLPrompt distributes it, one sentence a line::

    <prefix>.dev.{0,1}.txt     sentences of style 0 and style 1 (the training inputs here)
    <prefix>.test.{0,1}.txt    test sentences of each style
    <prefix>.ref.{0,1}.txt     optional human rewrites: line i of ref.s rewrites line i of test.s

``get_style_task("yelp-style", data_dir=..., direction="0_to_1")`` reads Yelp (prefix
``sentiment``); ``style_task_from_folder`` reads a user's own two-style corpus in the same layout,
and ``style_task_from_files`` takes the files one by one. Every file goes through the ``datasets``
"text" builder. A split is a ``datasets.Dataset`` with ``input`` (the source sentence),
``source_style``, ``target_style`` and ``references`` (a list, empty without reference files).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import datasets

from .data import TaskDataError
from .sampling import LIMIT_SEED, check_limit, random_indices, subset_note
from .templates import Template

DIRECTIONS = ("0_to_1", "1_to_0")
RLPROMPT_TEMPLATE = '{prompt} "{input}" "'
STYLE_TASKS = {"yelp-style": dict(prefix="sentiment", style_names=("negative", "positive"), folder="yelp-style")}
SPLITS = ("train", "dev", "test")
_DEV_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"  # the development checkout's shared data


def is_style_task(name: str | None) -> bool:
    """Whether ``name`` names a style-transfer task (``yelp-style``, ``yelp-style:1_to_0``)."""
    return bool(name) and name.partition(":")[0] in STYLE_TASKS


def parse_direction(direction: str) -> tuple[int, int]:
    """``"0_to_1"`` -> ``(0, 1)``, with a clear error for anything else."""
    source, sep, target = str(direction).partition("_to_")
    if not sep or not source.isdigit() or not target.isdigit() or source == target:
        raise TaskDataError(f"unknown style-transfer direction {direction!r}; use one of {list(DIRECTIONS)}")
    return int(source), int(target)


@dataclass(frozen=True)
class StyleTransferTask:
    """Rewrite sentences of style ``source_style`` into ``target_style``.

    ``files[split][style]`` is the file of that split and style, for the splits ``train`` (RLPrompt's
    training inputs: the dev files), ``test`` and optionally ``ref`` (human rewrites of test).
    ``dev`` is the last ``dev_size`` lines of the training file, held out from ``train``.
    """

    name: str
    files: dict
    direction: str = "0_to_1"
    style_names: tuple[str, ...] = ("style 0", "style 1")
    template: Template = field(default_factory=lambda: Template(RLPROMPT_TEMPLATE, fields=("input",)))
    dev_size: int = 100
    _lines: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self):
        source, target = parse_direction(self.direction)
        styles = max(source, target) + 1
        if len(self.style_names) < styles:
            raise TaskDataError(f"direction {self.direction} needs {styles} styles but task {self.name!r} names "
                                f"{len(self.style_names)}: {list(self.style_names)}")
        for split in ("train", "test"):
            for style in (source, target):
                if style not in self.files.get(split, {}):
                    raise TaskDataError(f"task {self.name!r} has no {split} file for style {style}")

    # ----------------------------------------------------------------- directions and styles

    @property
    def source_style(self) -> int:
        return parse_direction(self.direction)[0]

    @property
    def target_style(self) -> int:
        return parse_direction(self.direction)[1]

    @property
    def target_style_name(self) -> str:
        return self.style_names[self.target_style]

    @property
    def full_name(self) -> str:
        return f"{self.name}:{self.direction}"

    def with_direction(self, direction: str) -> "StyleTransferTask":
        return replace(self, direction=direction)

    def with_template(self, template: str | None) -> "StyleTransferTask":
        return self if template is None else replace(self, template=Template(template, fields=("input",)))

    # ----------------------------------------------------------------- data

    def lines(self, split: str, style: int) -> list[str]:
        """The non-blank lines of one file (``split`` in train/test/ref), read once through ``datasets``."""
        key = (split, style)
        if key not in self._lines:
            path = self.files.get(split, {}).get(style)
            if path is None:
                raise TaskDataError(f"task {self.name!r} has no {split} file for style {style} "
                                    f"({self.style_names[style] if style < len(self.style_names) else style})")
            self._lines[key] = read_lines(path, keep_blank=split in ("test", "ref"))
        return self._lines[key]

    def style_texts(self, split: str = "train") -> list[list[str]]:
        """Every style's sentences of a split (the whole training file for ``train``), for classifiers."""
        return [[t for t in self.lines("train" if split == "dev" else split, s) if t.strip()]
                for s in range(len(self.style_names))]

    @property
    def lowercase(self) -> bool:
        """Whether the data is lower-cased (then generated rewrites are lower-cased too)."""
        sample = self.lines("train", self.source_style)[:2000]
        return all(line == line.lower() for line in sample)

    def load_split(self, split: str, limit: int | None = None, seed: int = LIMIT_SEED) -> datasets.Dataset:
        """The inputs of ``split`` (with their references); ``limit``: a random subset drawn with ``seed``."""
        check_limit(limit)
        if split not in SPLITS:
            raise TaskDataError(f"unknown split {split!r} for task {self.full_name}; use one of {list(SPLITS)}")
        source, target = self.source_style, self.target_style
        references: list[list[str]]
        if split in ("train", "dev"):
            lines = self.lines("train", source)
            if len(lines) <= self.dev_size:
                raise TaskDataError(f"the training file of style {source} has {len(lines)} sentences; it needs more than "
                                    f"dev_size={self.dev_size} to hold out a dev split")
            inputs = lines[:-self.dev_size] if split == "train" else lines[-self.dev_size:]
            references = [[] for _ in inputs]
        else:
            inputs = self.lines("test", source)
            if "ref" in self.files and source in self.files["ref"]:
                refs = self.lines("ref", source)
                if len(refs) != len(inputs):
                    raise TaskDataError(f"reference file {self.files['ref'][source]} has {len(refs)} lines but test file "
                                        f"{self.files['test'][source]} has {len(inputs)}; line i must rewrite test line i")
                references = [[r] for r in refs]
            else:
                references = [[] for _ in inputs]
        if limit is not None:
            rows = random_indices(len(inputs), limit, seed)
            inputs, references = [inputs[i] for i in rows], [references[i] for i in rows]
        if not inputs:
            raise TaskDataError(f"the {split} split of task {self.full_name} is empty")
        return datasets.Dataset.from_dict({"input": inputs, "source_style": [source] * len(inputs),
                                           "target_style": [target] * len(inputs), "references": references})

    def subset_note(self, split: str, limit: int | None, seed: int = LIMIT_SEED) -> str | None:
        """What ``load_split(split, limit)`` holds, for reports (None: the whole split)."""
        total = len(self.load_split(split))
        return None if limit is None else subset_note(min(limit, total), total, split, stratified=False, seed=seed)

    def format(self, example: dict | str, prompt: str) -> str:
        """The task LM's input for one example (or one input sentence) and prompt."""
        example = {"input": example} if isinstance(example, str) else example
        return self.template.format(example, prompt)


def read_lines(path: str | Path, keep_blank: bool = False) -> list[str]:
    """One sentence a line through the ``datasets`` "text" builder; blank lines dropped unless kept."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise TaskDataError(f"data file {path} does not exist")
    if path.stat().st_size == 0:
        raise TaskDataError(f"data file {path} is empty")
    try:
        data = datasets.load_dataset("text", data_files=str(path), split="train")
    except Exception as error:  # datasets wraps reader errors in several exception types
        raise TaskDataError(f"could not read {path} as text, one sentence a line: {error}") from error
    lines = [line.strip() for line in data["text"]]
    lines = lines if keep_blank else [line for line in lines if line]
    if not any(lines):
        raise TaskDataError(f"data file {path} has no sentences")
    return lines


def style_task_from_files(name: str, files: dict, *, direction: str = "0_to_1",
                          style_names: tuple[str, ...] | list[str] | None = None, template: str | None = None,
                          dev_size: int = 100) -> StyleTransferTask:
    """A style-transfer task from explicit files: ``{"train": [f0, f1], "test": [f0, f1], "ref": [r0, r1]}``
    (lists in style order, or dicts style -> path). ``ref`` is optional."""
    unknown = set(files) - {"train", "test", "ref"}
    if unknown:
        raise TaskDataError(f"unknown file groups {sorted(unknown)} for task {name!r}; use train, test and ref")
    normalised = {}
    for split, group in files.items():
        group = dict(enumerate(group)) if isinstance(group, (list, tuple)) else {int(k): v for k, v in group.items()}
        normalised[split] = {style: Path(path).expanduser() for style, path in group.items()}
    styles = max(len(g) for g in normalised.values())
    names = tuple(style_names) if style_names else tuple(f"style {i}" for i in range(styles))
    task = StyleTransferTask(name=name, files=normalised, direction=direction, style_names=names, dev_size=dev_size)
    return task.with_template(template)


def style_task_from_folder(folder: str | Path, *, name: str | None = None, prefix: str | None = None,
                           direction: str = "0_to_1", style_names=None, template: str | None = None,
                           dev_size: int = 100) -> StyleTransferTask:
    """A two-style corpus in the Yelp layout (``<prefix>.{dev,test,ref}.{0,1}.txt``); ``prefix`` is found if unique."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise TaskDataError(f"style-transfer data folder {folder} does not exist")
    if prefix is None:
        prefixes = sorted({p.name[: -len(".dev.0.txt")] for p in folder.glob("*.dev.0.txt")})
        if len(prefixes) != 1:
            found = f"found prefixes {prefixes}" if prefixes else "found no *.dev.0.txt file"
            raise TaskDataError(f"{folder} must hold <prefix>.dev.0.txt, <prefix>.dev.1.txt, <prefix>.test.0.txt, "
                                f"<prefix>.test.1.txt (and optionally <prefix>.ref.0.txt, ...); {found}")
        prefix = prefixes[0]
    files: dict = {}
    for split, part in (("train", "dev"), ("test", "test"), ("ref", "ref")):
        for style in (0, 1):
            path = folder / f"{prefix}.{part}.{style}.txt"
            if path.is_file():
                files.setdefault(split, {})[style] = path
            elif split != "ref":
                raise TaskDataError(f"style-transfer data file {path} is missing; the layout is "
                                    f"{prefix}.{{dev,test,ref}}.{{0,1}}.txt (ref optional)")
    return style_task_from_files(name or prefix, files, direction=direction, style_names=style_names,
                                 template=template, dev_size=dev_size)


def get_style_task(name: str = "yelp-style", *, data_dir: str | Path | None = None, direction: str | None = None,
                   template: str | None = None) -> StyleTransferTask:
    """A built-in style task (``yelp-style``; ``yelp-style:1_to_0`` names the direction) or a corpus folder.

    ``data_dir`` is the folder with the files or its parent (``../shared/data``); without it the
    development checkout's ``../shared/data/yelp-style`` is used when present.
    """
    base, _, named_direction = str(name).partition(":")
    if named_direction and direction and named_direction != direction:
        raise TaskDataError(f"task {name!r} names direction {named_direction} but direction={direction!r} was given")
    direction = named_direction or direction or DIRECTIONS[0]
    parse_direction(direction)
    if base not in STYLE_TASKS:
        if Path(base).expanduser().is_dir():
            return style_task_from_folder(base, direction=direction, template=template)
        raise TaskDataError(f"unknown style-transfer task {base!r}; built in: {sorted(STYLE_TASKS)}, or pass a folder "
                            "with <prefix>.{dev,test,ref}.{0,1}.txt")
    spec = STYLE_TASKS[base]
    candidates = [Path(data_dir).expanduser()] if data_dir is not None else [_DEV_DATA]
    folder = None
    for root in candidates:
        for option in (root / spec["folder"], root):
            if (option / f"{spec['prefix']}.dev.0.txt").is_file():
                folder = option
                break
        if folder is not None:
            break
    if folder is None:
        where = f"in {candidates[0]} or {candidates[0] / spec['folder']}" if data_dir is not None else "(no --data-dir given)"
        raise TaskDataError(f"no {base} data {where}: pass --data-dir with the folder holding "
                            f"{spec['prefix']}.{{dev,test,ref}}.{{0,1}}.txt (e.g. ../shared/data/yelp-style), as "
                            "distributed with RLPrompt's text-style-transfer example")
    return style_task_from_folder(folder, name=base, prefix=spec["prefix"], direction=direction,
                                  style_names=spec["style_names"], template=template)
