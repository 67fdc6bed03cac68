"""The built-in tasks, and user tasks defined in a small JSON file."""

from __future__ import annotations

import json
from pathlib import Path

from .data import HubSource, TaskDataError
from .task import ClassificationTask, task_from_files
from .templates import Template


class UnknownTaskError(KeyError):
    def __str__(self):  # KeyError quotes its message; show it plainly
        return str(self.args[0])


CAUSAL_TEMPLATE = "{sentence} {prompt}"

# Verbalizers: the words a general LM predicts after a sentence and a short prompt (one token each
# for GPT-2 and SmolLM2). RLPrompt's own, chosen for GPT-2 (RLPROMPT_VERBALIZERS), are one option
# away: the recipe rlprompt-paper and the experiments' --full modes use them. On SmolLM2-135M they
# leave no signal to learn from: SST-2's " terrible"/" great" give 0.50 with no prompt and 0.51 with
# " Sentiment:", against 0.61 and 0.78 for " negative"/" positive"; TREC's " Description" ... " Number"
# 0.34 and at best 0.21 with a prompt, its label words 0.33 and 0.50 (400 test sentences each). Each
# task's description is what the RL policy writes its prompt after (``--condition auto``).
# The hub sources serve users who are online; offline, every task reads RLPrompt's few-shot folders.
_BUILTIN = {
    "sst-2": dict(verbalizers=(" negative", " positive"), label_names=("negative", "positive"),
                  description="Classify the sentiment of this movie review as positive or negative.",
                  hub=HubSource("SetFit/sst2")),
    "sst-5": dict(verbalizers=(" terrible", " bad", " okay", " good", " great"),
                  label_names=("very negative", "negative", "neutral", "positive", "very positive"),
                  description="Rate the sentiment of this movie review as terrible, bad, okay, good or great.",
                  hub=HubSource("SetFit/sst5")),
    "agnews": dict(verbalizers=(" World", " Sports", " Business", " Tech"),
                   description="Classify the topic of this news article as World, Sports, Business or Tech.",
                   hub=HubSource("fancyzhx/ag_news", splits={"train": "train", "test": "test"})),
    # RLPrompt's files: 0 = subjective, 1 = objective; SetFit/subj orders them the other way.
    "subj": dict(verbalizers=(" subjective", " objective"),
                 description="Classify this sentence as subjective or objective.",
                 hub=HubSource("SetFit/subj", splits={"train": "train", "test": "test"}, label_map={0: 1, 1: 0})),
    # RLPrompt's files: DESC, ENTY, ABBR, HUM, LOC, NUM; CogComp/trec: ABBR, ENTY, DESC, HUM, LOC, NUM.
    "trec": dict(verbalizers=(" description", " entity", " abbreviation", " person", " location", " number"),
                 description="Classify what this question asks for: a description, an entity, an abbreviation, a "
                             "person, a location or a number.",
                 hub=HubSource("CogComp/trec", splits={"train": "train", "test": "test"},
                               columns={"sentence": "text", "label": "coarse_label"},
                               label_map={0: 2, 1: 1, 2: 0, 3: 3, 4: 4, 5: 5})),
    # The rest of RLPrompt's classification table (Deng et al., 2022): on the hub only, or from a folder in
    # RLPrompt's few-shot layout (its repository ships 16-shot splits of each). Labels as RLPrompt numbers them.
    "mr": dict(verbalizers=(" negative", " positive"), label_names=("negative", "positive"),
               description="Classify the sentiment of this movie review as positive or negative.",
               hub=HubSource("cornell-movie-review-data/rotten_tomatoes")),
    "cr": dict(verbalizers=(" negative", " positive"), label_names=("negative", "positive"),
               description="Classify the sentiment of this product review as positive or negative.",
               hub=HubSource("SetFit/CR", splits={"train": "train", "test": "test"})),
    "yelp-2": dict(verbalizers=(" negative", " positive"), label_names=("negative", "positive"),
                   description="Classify the sentiment of this restaurant review as positive or negative.",
                   hub=HubSource("fancyzhx/yelp_polarity", splits={"train": "train", "test": "test"})),
    "yelp-5": dict(verbalizers=(" terrible", " bad", " okay", " good", " great"),
                   label_names=("1 star", "2 stars", "3 stars", "4 stars", "5 stars"),
                   description="Rate this restaurant review as terrible, bad, okay, good or great.",
                   hub=HubSource("Yelp/yelp_review_full", splits={"train": "train", "test": "test"})),
    "yahoo": dict(verbalizers=(" culture", " science", " health", " education", " computer", " sports", " business",
                               " music", " family", " politics"),
                  label_names=("society & culture", "science & mathematics", "health", "education & reference",
                               "computers & internet", "sports", "business & finance", "entertainment & music",
                               "family & relationships", "politics & government"),
                  description="Classify the topic of this question as culture, science, health, education, "
                              "computer, sports, business, music, family or politics.",
                  hub=HubSource("community-datasets/yahoo_answers_topics", splits={"train": "train", "test": "test"},
                                columns={"sentence": "question_title", "label": "topic"})),
    "dbpedia": dict(verbalizers=(" Company", " Education", " Artist", " Sports", " Office", " Transportation",
                                 " Building", " Natural", " Village", " Animal", " Plant", " Album", " Film",
                                 " Written"),
                    label_names=("company", "educational institution", "artist", "athlete", "office holder",
                                 "means of transportation", "building", "natural place", "village", "animal", "plant",
                                 "album", "film", "written work"),
                    description="Classify what this encyclopedia article is about: a company, an educational "
                                "institution, an artist, an athlete, an office holder, a means of transportation, a "
                                "building, a natural place, a village, an animal, a plant, an album, a film or a "
                                "written work.",
                    hub=HubSource("fancyzhx/dbpedia_14", splits={"train": "train", "test": "test"},
                                  columns={"sentence": "content", "label": "label"})),
}
# RLPrompt's verbalizers with GPT-2 (Deng et al., 2022), where they differ from the built-in ones.
RLPROMPT_VERBALIZERS = {"sst-2": (" terrible", " great"), "agnews": ("World", "Sports", "Business", "Tech"),
                        "trec": (" Description", " Entity", " Expression", " Human", " Location", " Number")}
# RLPrompt's masked-LM setting (its Table 2, RoBERTa-large): task -> (cloze template, verbalizers). The class is
# read at {mask}, after the sentence and the prompt, except for AG News, where the mask comes first. Yahoo's
# words carry no leading space in RLPrompt's configuration, the others do where RoBERTa's token has one.
CLOZE_TEMPLATE = "{sentence} {prompt} {mask} ."
_SENTIMENT_5 = (" terrible", " bad", " okay", " good", " great")
RLPROMPT_MASKED = {
    "sst-2": (CLOZE_TEMPLATE, (" terrible", " great")), "mr": (CLOZE_TEMPLATE, (" terrible", " great")),
    "cr": (CLOZE_TEMPLATE, (" terrible", " great")), "yelp-2": (CLOZE_TEMPLATE, (" terrible", " great")),
    "sst-5": (CLOZE_TEMPLATE, _SENTIMENT_5), "yelp-5": (CLOZE_TEMPLATE, _SENTIMENT_5),
    "agnews": ("{mask} {prompt} {sentence}", ("World", "Sports", "Business", "Tech")),
    "subj": (CLOZE_TEMPLATE, (" subjective", " objective")),
    "trec": (CLOZE_TEMPLATE, RLPROMPT_VERBALIZERS["trec"]),
    "yahoo": (CLOZE_TEMPLATE, ("culture", "science", "health", "education", "computer", "sports", "business", "music",
                               "family", "politics")),
    "dbpedia": (CLOZE_TEMPLATE, _BUILTIN["dbpedia"]["verbalizers"]),
}


def rlprompt_cloze(task: ClassificationTask) -> ClassificationTask:
    """The task as RLPrompt asks a masked LM: its cloze template and verbalizers (``RLPROMPT_MASKED``)."""
    if task.name not in RLPROMPT_MASKED:
        raise UnknownTaskError(f"RLPrompt has no cloze template for task {task.name!r} (it has one for "
                               f"{', '.join(RLPROMPT_MASKED)}); pass --template with a {{mask}} slot")
    template, verbalizers = RLPROMPT_MASKED[task.name]
    return task.with_options(template=template, verbalizers=list(verbalizers))


def list_tasks() -> list[str]:
    from .superglue import SUPERGLUE_SPECS

    return sorted([*_BUILTIN, *SUPERGLUE_SPECS])


def get_task(name: str, *, data_dir: str | None = None, seed: str = "16-42", template: str | None = None,
             verbalizers: list[str] | None = None, shots: int | None = None,
             split_seed: int | None = None) -> ClassificationTask:
    """A built-in task by name, or a user task from a JSON file (see ``task_from_json``).

    With ``data_dir`` the examples come from local files in RLPrompt's few-shot layout (``shots``
    and ``split_seed``, when given, pick the folder ``<K>-<seed>``); without it, from the Hugging
    Face hub, where ``shots`` = K draws K training and K dev examples per class from the hub's
    train split with ``split_seed`` (default 42), RLPrompt's protocol, and keeps the test split whole.
    """
    if Path(name).suffix == ".json":
        if shots is not None:
            raise TaskDataError(f"--shots draws examples from the hub; the task file {name} names its own files")
        task = task_from_json(name)
        return task.with_options(template=template, verbalizers=verbalizers)
    if shots is not None and data_dir is not None:
        seed = f"{shots}-{42 if split_seed is None else split_seed}"
    hub_shots = dict(shots=shots, split_seed=split_seed) if data_dir is None else {}
    from .superglue import SUPERGLUE_SPECS, superglue_task  # FewGLUE's own layout offline

    if name in SUPERGLUE_SPECS:
        task = superglue_task(name, data_dir=data_dir, template=template, verbalizers=verbalizers)
        return task.with_options(**hub_shots)
    if name not in _BUILTIN:
        raise UnknownTaskError(
            f"unknown task {name!r}; built-in tasks: {', '.join(list_tasks())}, or pass a task file "
            "(task.json) describing your own data"
        )
    spec = _BUILTIN[name]
    task = ClassificationTask(name=name, template=Template(template or CAUSAL_TEMPLATE), data_dir=data_dir,
                              seed=seed, **spec)
    return task.with_options(verbalizers=verbalizers, **hub_shots)


def task_from_json(path: str | Path) -> ClassificationTask:
    """A classification task on your own TSV/CSV/JSONL files, described by a JSON file::

        {"name": "my-task",
         "files": {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"},
         "template": "Review: {sentence} Sentiment:{prompt}",
         "verbalizers": [" negative", " positive"],
         "text_column": "sentence", "label_column": "label",
         "label_names": ["negative", "positive"],
         "description": "Classify the sentiment of this review as negative or positive."}

    Relative file paths are read relative to the JSON file. Labels may be integers or label names.
    ``description`` (optional) is what ``--condition auto`` gives the RL policy to write after; without
    it the task derives one from the verbalizers (``ClassificationTask.describe``).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise UnknownTaskError(f"task file {path} does not exist")
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise TaskDataError(f"task file {path} is not valid JSON: {error}") from None
    if not isinstance(spec, dict):
        raise TaskDataError(f"task file {path} must hold a JSON object ({{\"files\": ..., \"verbalizers\": ...}}), "
                            f"not a {type(spec).__name__}; see `rlprompt-interp eval --help` for the format")
    check_task_spec(path, spec)
    required = ["files", "verbalizers"]
    missing = [k for k in required if k not in spec]
    if missing:
        raise TaskDataError(f"task file {path} misses {missing}; see `rlprompt-interp eval --help` for the format")
    allowed = {"name", "files", "template", "verbalizers", "text_column", "label_column", "label_names", "description"}
    unknown = set(spec) - allowed
    if unknown:
        raise TaskDataError(f"task file {path} has unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
    files = {split: (path.parent / f) for split, f in spec["files"].items()}
    return task_from_files(spec.get("name", path.stem), files, template=spec.get("template", CAUSAL_TEMPLATE),
                           verbalizers=spec["verbalizers"], label_names=spec.get("label_names"),
                           text_column=spec.get("text_column", "sentence"),
                           label_column=spec.get("label_column", "label"), description=spec.get("description"))


def check_task_spec(path: Path, spec: dict) -> None:
    """The types of a task file's values, so a wrong one is named rather than failing later."""
    def bad(key: str, expected: str):
        raise TaskDataError(f"task file {path}: {key!r} must be {expected}, got {spec[key]!r:.80}")

    if "files" in spec and not (isinstance(spec["files"], dict) and spec["files"]
                                and all(isinstance(f, str) for f in spec["files"].values())):
        bad("files", 'an object of split -> file name, e.g. {"train": "train.tsv", "test": "test.tsv"}')
    for key in ("verbalizers", "label_names"):
        if key in spec and not (isinstance(spec[key], list) and all(isinstance(v, str) for v in spec[key])):
            bad(key, 'a list of strings, e.g. [" bad", " good"]')
    for key in ("name", "template", "text_column", "label_column", "description"):
        if key in spec and not isinstance(spec[key], str):
            bad(key, "a string")
