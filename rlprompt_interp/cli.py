"""``rlprompt-interp``: the command line. Each sub-command is a thin shell over the Python API."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from .agents.continuous import ContinuousPromptError
from .metrics.errors import MetricInputError
from .models import ModelLoadError
from .rewards.base import RewardError
from .style_classifier import StyleClassifierError
from .tasks import TaskDataError, TemplateError, UnknownTaskError, VerbalizerError

USER_ERRORS = (ModelLoadError, TaskDataError, TemplateError, UnknownTaskError, VerbalizerError, FileNotFoundError,
               MetricInputError, ContinuousPromptError, FileExistsError, RewardError, StyleClassifierError)

# Modules with a ``register(subparsers)`` function that adds their sub-command.
SUBCOMMAND_MODULES: list[str] = ["rlprompt_interp.cli_train", "rlprompt_interp.cli_style", "rlprompt_interp.cli_interp"]


def add_task_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("task")
    group.add_argument("--task", required=True,
                       help="a built-in task (sst-2, sst-5, agnews, subj, trec, boolq, cb, rte, copa, wsc), a "
                            "task.json file, or the name of a new task given with --data-files")
    group.add_argument("--data-dir", help="local data in RLPrompt's few-shot layout (<task>/<seed>/{train,dev}.tsv, "
                                          "<task>/test.tsv); without it the task is read from the hub")
    group.add_argument("--seed-split", default="16-42", help="which few-shot split of --data-dir (default 16-42)")
    group.add_argument("--data-files", nargs="+", metavar="SPLIT=PATH",
                       help="your own data: e.g. train=train.tsv test=test.jsonl (TSV, CSV or JSONL)")
    group.add_argument("--text-column", default="sentence", help="text column of --data-files")
    group.add_argument("--label-column", default="label", help="label column of --data-files")
    group.add_argument("--template", help="where prompt and example go, e.g. 'Review: {sentence}\\nSentiment:{prompt}'")
    group.add_argument("--verbalizers", nargs="+", help="one single-token word per class, in label order")


def build_task(args: argparse.Namespace):
    from .tasks import get_task, task_from_files
    from .tasks.registry import CAUSAL_TEMPLATE

    template = args.template.replace("\\n", "\n") if args.template else None
    if args.data_files:
        files = {}
        for item in args.data_files:
            split, sep, path = item.partition("=")
            if not sep:
                raise TaskDataError(f"--data-files takes SPLIT=PATH items, got {item!r}")
            files[split] = path
        if not args.verbalizers:
            raise VerbalizerError("a task from --data-files needs --verbalizers, one per class in label order")
        return task_from_files(args.task, files, template=template or CAUSAL_TEMPLATE, verbalizers=args.verbalizers,
                               text_column=args.text_column, label_column=args.label_column)
    return get_task(args.task, data_dir=args.data_dir, seed=args.seed_split, template=template,
                    verbalizers=args.verbalizers)


def cmd_eval(args: argparse.Namespace) -> int:
    from .metrics.report import build_report
    from .models import load_lm
    from .prompts import LearnedPrompt
    from .tasks.style_transfer import is_style_task

    if is_style_task(args.task):  # yelp-style: rewrites scored for content/style/fluency (cli_style)
        from .cli_style import eval_from_generic_args

        return eval_from_generic_args(args)
    task = build_task(args)
    prompt = LearnedPrompt.load(args.learned) if args.learned else args.prompt
    model = args.model
    if model == "auto" and args.learned:
        model = prompt.provenance.get("task_model", prompt.provenance.get("model", "auto"))
    lm = load_lm(model, role="task", dtype=args.dtype)
    report = build_report(task, lm, prompt, split=args.split, limit=args.limit, batch_size=args.batch_size,
                          scorer=None if args.no_perplexity else args.scorer, unembed_metric=args.unembed_metric,
                          readout_metric=args.readout_metric, top_k=args.top_k,
                          faithfulness_for_discrete=not args.no_faithfulness, dtype=args.dtype,
                          progress=not args.quiet)
    report.classification.extra["model"] = lm.spec
    print(report.format())
    if args.output:
        write_json(args.output, report.to_dict())
        print(f"report written to {args.output}")
    return 0


def write_json(path: str | Path, payload: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=float))
    tmp.replace(path)


def add_eval_input_arguments(parser: argparse.ArgumentParser) -> None:
    """The prompt to evaluate and which examples: shared by `eval` and `style-eval`."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--prompt", default="", help="the prompt text (default: no prompt)")
    source.add_argument("--learned", metavar="DIR", help="a learned prompt folder (discrete or soft)")
    parser.add_argument("--split", default="test", choices=["train", "dev", "test"])
    parser.add_argument("--limit", type=int, help="score only the first N examples")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--dtype", default="auto", help="auto (bf16 on GPU, fp32 on CPU), float32, bfloat16")


def build_parser() -> argparse.ArgumentParser:
    from .metrics.report import add_report_arguments

    parser = argparse.ArgumentParser(prog="rlprompt-interp", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    evaluate = commands.add_parser("eval", help="accuracy of a prompt on a task")
    add_task_arguments(evaluate)
    evaluate.add_argument("--model", default="auto",
                          help="task LM: hub id, local folder or embedded name (smollm2-135m, tiny-gpt2, ...); "
                               "auto = distilgpt2 online, smollm2-135m offline")
    add_eval_input_arguments(evaluate)
    evaluate.add_argument("--output", help="write the report as JSON here")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    add_report_arguments(evaluate)
    evaluate.set_defaults(run=cmd_eval)
    for module_name in SUBCOMMAND_MODULES:
        importlib.import_module(module_name).register(commands)
    return parser


def quiet_libraries() -> None:
    """Keep the terminal for our own progress bars: no per-file bars from datasets or transformers."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_libraries()
    try:
        return args.run(args)
    except USER_ERRORS as error:
        print(f"rlprompt-interp: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
