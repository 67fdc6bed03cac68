"""What the sub-commands share: the task flags, the prompt/example flags of evaluations, and output helpers."""

from __future__ import annotations

import argparse

from ..config import ConfigFileParser, DefaultsHelpFormatter
from ..models import AUTO_DTYPE_HELP, DTYPE_CHOICES, EVAL_DTYPE
from ..tasks import TaskDataError, VerbalizerError

EVAL_DTYPE_HELP = (f"dtype of the models that score the prompt: {EVAL_DTYPE} by default, so a reported accuracy does "
                   f"not depend on the CPU it was computed on; {AUTO_DTYPE_HELP}; or bfloat16, float16")


class UsageError(ValueError):
    """A command-line value that cannot work; the message names the flag and the fix."""


class Parser(ConfigFileParser):
    """argparse whose usage errors read like every other user error: one ``rlprompt-interp: error:`` line, exit 2;
    with ``--config FILE`` where a command adds it."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"rlprompt-interp: error: {message} (see `{self.prog} --help`)\n")


def positive_int(text: str) -> int:
    """An argparse type for counts that must be at least 1 (a bad one is a one-line usage error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_task_arguments(parser: Parser, *, data: bool = True, required: bool = True, task_help: str = "") -> None:
    """The task flags; ``data=False`` leaves out those that say where its examples come from (``predict``
    reads none)."""
    group = parser.add_section("task", "task")
    group.add_argument("--task", required=required,
                       help="a built-in task (sst-2, sst-5, agnews, subj, trec, mr, cr, yelp-2, yelp-5, yahoo, dbpedia, "
                            "boolq, cb, rte, copa, wsc), a task.json file"
                            + (", or the name of a new task given with --data-files" if data else "")
                            + task_help)
    if data:
        add_task_data_arguments(group)
    group.add_argument("--template", help="where prompt and example go, e.g. 'Review: {sentence}\\nSentiment:{prompt}' "
                                          "(when omitted: the task's own)")
    group.add_argument("--verbalizers", nargs="+", help="one single-token word per class, in label order (when "
                                                        "omitted: the task's own"
                                                        + ("; --data-files needs them)" if data else ")"))


def add_task_data_arguments(group) -> None:
    group.add_argument("--data-dir", help="local data in RLPrompt's few-shot layout (<task>/<seed>/{train,dev}.tsv, "
                                          "<task>/test.tsv); without it the task is read from the hub")
    group.add_argument("--seed-split", default="16-42", help="which few-shot split of --data-dir")
    group.add_argument("--shots", type=positive_int,
                       help="RLPrompt's K-shot protocol from the hub: K training and K dev examples per class drawn "
                            "from the hub's train split (the test split whole); with --data-dir, the folder "
                            "<K>-<seed> (when omitted: every example of each split)")
    group.add_argument("--split-seed", type=int, help="which K-shot draw (default 42)")
    group.add_argument("--data-files", nargs="+", metavar="SPLIT=PATH",
                       help="your own data: e.g. train=train.tsv test=test.jsonl (TSV, CSV or JSONL)")
    group.add_argument("--text-column", help="text column of --data-files or of a task.json's files (when omitted: "
                                             "the task.json's text_column, else 'sentence')")
    group.add_argument("--label-column", help="label column of --data-files or of a task.json's files (when omitted: "
                                              "the task.json's label_column, else 'label')")


def build_task(args: argparse.Namespace):
    """The task the flags describe (a command without the data flags, ``predict``, gets a task's definition)."""
    from ..tasks import get_task, task_from_files
    from ..tasks.registry import CAUSAL_TEMPLATE

    data = {name: getattr(args, name, None) for name in ("data_dir", "shots", "split_seed", "data_files",
                                                         "text_column", "label_column")}
    template = args.template.replace("\\n", "\n") if args.template else None
    if data["split_seed"] is not None and not data["shots"]:
        raise TaskDataError("--split-seed picks one K-shot draw: give --shots K too (e.g. --shots 16 --split-seed 13)")
    if data["data_files"]:
        files = {}
        for item in data["data_files"]:
            split, sep, path = item.partition("=")
            if not sep:
                raise TaskDataError(f"--data-files takes SPLIT=PATH items, got {item!r}")
            files[split] = path
        if not args.verbalizers:
            raise VerbalizerError("a task from --data-files needs --verbalizers, one per class in label order")
        if data["shots"]:
            raise TaskDataError("--shots draws examples from the hub; --data-files gives the splits themselves")
        return task_from_files(args.task, files, template=template or CAUSAL_TEMPLATE, verbalizers=args.verbalizers,
                               text_column=data["text_column"] or "sentence",
                               label_column=data["label_column"] or "label")
    task = get_task(args.task, data_dir=data["data_dir"], seed=getattr(args, "seed_split", "16-42"),
                    template=template, verbalizers=args.verbalizers, shots=data["shots"],
                    split_seed=data["split_seed"])
    return with_column_flags(task, text_column=data["text_column"], label_column=data["label_column"])


def with_column_flags(task, *, text_column: str | None, label_column: str | None):
    """``task`` reading the columns ``--text-column``/``--label-column`` name: a task on your own files (a
    task.json) takes them over its own; a built-in task refuses them rather than ignoring them, unless they name
    its own columns (``sentence``, ``label``: what a run's config.yaml recorded before they were refused)."""
    given = {flag: value for flag, value in (("--text-column", text_column), ("--label-column", label_column))
             if value}
    if not task.files:
        given = {flag: value for flag, value in given.items()
                 if value != ("label" if flag == "--label-column" else "sentence")}
    if not given:
        return task
    if not task.files:
        flags = " and ".join(given)
        raise TaskDataError(f"{flags} {'name' if len(given) > 1 else 'names'} the columns of your own files "
                            f"(--data-files, or a task.json's files); task {task.name!r} reads its own columns: "
                            f"leave {flags} out")
    return task.with_columns(**{ours: value for ours, value in (("sentence", text_column), ("label", label_column))
                                if value})


def task_for_prompt(args: argparse.Namespace, prompt, *, say=print):
    """The task to score ``prompt`` with: ``--task`` as given, and for a learned prompt the template and
    verbalizers it was trained with unless given (said with ``say``, and returned as the definition; None for
    a text prompt)."""
    from ..prompts import LearnedPrompt
    from ..tasks.recorded import describe_definition, use_recorded_definition

    task = build_task(args)
    if not isinstance(prompt, LearnedPrompt):
        return task, None
    task, definition = use_recorded_definition(task, prompt.provenance,
                                               template=task.template.text if args.template else None,
                                               verbalizers=args.verbalizers)
    say(f"task {task.name}: {describe_definition(definition)}")
    return task, definition


def add_eval_input_arguments(parser: argparse.ArgumentParser) -> None:
    """The prompt to evaluate and which examples: shared by `eval` and `style-eval`."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--prompt", default="", help="the prompt text (default: no prompt)")
    source.add_argument("--learned", metavar="DIR", help="a learned prompt folder (discrete or soft)")
    parser.add_argument("--split", default="test", choices=["train", "dev", "test"], help="which split to score")
    parser.add_argument("--limit", type=positive_int, help="score a random N examples (stratified by label, the same N every "
                                                  "time) instead of the whole split")
    parser.add_argument("--batch-size", type=positive_int, default=32, help="examples per forward pass")
    add_dtype_argument(parser)


def add_dtype_argument(parser: argparse.ArgumentParser) -> None:
    """``--dtype`` of the commands that score a prompt: fp32 unless asked, one of ``DTYPE_CHOICES``."""
    parser.add_argument("--dtype", default=EVAL_DTYPE, choices=DTYPE_CHOICES, help=EVAL_DTYPE_HELP)


def quiet_libraries() -> None:
    """Keep the terminal for our own progress bars: no per-file bars from datasets or transformers."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
