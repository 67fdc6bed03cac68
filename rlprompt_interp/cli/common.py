"""What the sub-commands share: the task flags, the prompt/example flags of evaluations, and output helpers."""

from __future__ import annotations

import argparse

from ..config import ConfigFileParser, DefaultsHelpFormatter
from ..models import AUTO_DTYPE_HELP, EVAL_DTYPE
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


def add_task_arguments(parser: Parser) -> None:
    group = parser.add_section("task", "task")
    group.add_argument("--task", required=True,
                       help="a built-in task (sst-2, sst-5, agnews, subj, trec, boolq, cb, rte, copa, wsc), a "
                            "task.json file, or the name of a new task given with --data-files")
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
    group.add_argument("--text-column", default="sentence", help="text column of --data-files")
    group.add_argument("--label-column", default="label", help="label column of --data-files")
    group.add_argument("--template", help="where prompt and example go, e.g. 'Review: {sentence}\\nSentiment:{prompt}' "
                                          "(when omitted: the task's own)")
    group.add_argument("--verbalizers", nargs="+", help="one single-token word per class, in label order (when "
                                                        "omitted: the task's own; --data-files needs them)")

def build_task(args: argparse.Namespace):
    from ..tasks import get_task, task_from_files
    from ..tasks.registry import CAUSAL_TEMPLATE

    template = args.template.replace("\\n", "\n") if args.template else None
    if getattr(args, "split_seed", None) is not None and not getattr(args, "shots", None):
        raise TaskDataError("--split-seed picks one K-shot draw: give --shots K too (e.g. --shots 16 --split-seed 13)")
    if args.data_files:
        files = {}
        for item in args.data_files:
            split, sep, path = item.partition("=")
            if not sep:
                raise TaskDataError(f"--data-files takes SPLIT=PATH items, got {item!r}")
            files[split] = path
        if not args.verbalizers:
            raise VerbalizerError("a task from --data-files needs --verbalizers, one per class in label order")
        if getattr(args, "shots", None):
            raise TaskDataError("--shots draws examples from the hub; --data-files gives the splits themselves")
        return task_from_files(args.task, files, template=template or CAUSAL_TEMPLATE, verbalizers=args.verbalizers,
                               text_column=args.text_column, label_column=args.label_column)
    return get_task(args.task, data_dir=args.data_dir, seed=args.seed_split, template=template,
                    verbalizers=args.verbalizers, shots=getattr(args, "shots", None),
                    split_seed=getattr(args, "split_seed", None))


def add_eval_input_arguments(parser: argparse.ArgumentParser) -> None:
    """The prompt to evaluate and which examples: shared by `eval` and `style-eval`."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--prompt", default="", help="the prompt text (default: no prompt)")
    source.add_argument("--learned", metavar="DIR", help="a learned prompt folder (discrete or soft)")
    parser.add_argument("--split", default="test", choices=["train", "dev", "test"], help="which split to score")
    parser.add_argument("--limit", type=positive_int, help="score a random N examples (stratified by label, the same N every "
                                                  "time) instead of the whole split")
    parser.add_argument("--batch-size", type=positive_int, default=32, help="examples per forward pass")
    parser.add_argument("--dtype", default=EVAL_DTYPE, help=EVAL_DTYPE_HELP)


def quiet_libraries() -> None:
    """Keep the terminal for our own progress bars: no per-file bars from datasets or transformers."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
