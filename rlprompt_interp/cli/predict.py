"""``rlprompt-interp predict``: label new, unlabelled texts with a learned prompt (or a prompt and a task).

Each text gets the class ``eval`` would give it and the probability of every class
(``prediction.classify``). Texts come from a JSONL, CSV or TSV file, or one per line on standard
input; labels go to a JSONL, CSV or TSV file, or as JSON lines to standard output. Every input is
read and checked before the model loads.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from pathlib import Path

from ..atomic import write_atomic
from ..prompts import task_model
from .common import UsageError, add_dtype_argument, add_task_arguments, positive_int, task_for_prompt

OUTPUT_FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "tsv"}
STANDARD_STREAM = "-"


def cmd_predict(args: argparse.Namespace) -> int:
    from ..models import dtype_name, load_lm
    from ..prediction import classify, examples_from_texts
    from ..prompts import LearnedPrompt
    from ..tasks.recorded import recorded_task

    output_format = output_format_of(args.output)
    if args.learned is None and args.task is None:
        raise UsageError("--prompt TEXT needs --task (a built-in task or a task.json) for its template, "
                         "verbalizers and label names; a --learned prompt brings its own")
    prompt = LearnedPrompt.load(args.learned) if args.learned else args.prompt
    if args.task is None:
        task = recorded_task(prompt.provenance).with_options(
            template=args.template.replace("\\n", "\n") if args.template else None, verbalizers=args.verbalizers)
    else:
        task, _ = task_for_prompt(args, prompt, say=lambda line: print(line, file=sys.stderr))
    columns, texts = read_texts(args.input, task, args.text_column)
    examples_from_texts(task, texts)  # an empty text stops before the model loads
    lm = load_lm(task_model(prompt, args.model), role="task", dtype=args.dtype)
    predictions = classify(task, lm, prompt, texts, batch_size=args.batch_size, progress=not args.quiet)
    rows = [{**({columns[0]: text} if isinstance(text, str) else text), **row}
            for text, row in zip(texts, predictions.rows())]
    write_predictions(rows, args.output, output_format, predictions.label_names)
    counts = Counter(predictions.labels)
    shown = prompt.text if isinstance(prompt, LearnedPrompt) else prompt
    print(f"labelled {len(rows)} texts with {shown!r} (task {task.name}, {lm.spec}, {dtype_name(lm.dtype)}): "
          + ", ".join(f"{name} {counts[name]}" for name in predictions.label_names)
          + (f"; written to {args.output}" if args.output not in (None, STANDARD_STREAM) else ""), file=sys.stderr)
    return 0


def output_format_of(output: str | None) -> str:
    """The format of ``--output`` from its extension (standard output: JSON lines); checked before any model loads."""
    if output in (None, STANDARD_STREAM):
        return "jsonl"
    suffix = Path(output).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise UsageError(f"--output {output}: name a .jsonl, .csv or .tsv file (or - for JSON lines on standard "
                         "output)")
    return OUTPUT_FORMATS[suffix]


def read_texts(source: str | None, task, text_column: str | None) -> tuple[list[str], list]:
    """The input columns the texts come from, and the texts (strings; dicts of the fields for a task of several).

    From a file: the column ``--text-column`` names; else the task's own text column (a task.json's
    ``text_column``), its template's field (``sentence``) or ``text``; else the file's only text column.
    A task of several fields (BoolQ) reads one column per field. From standard input: one text per line.
    """
    from ..tasks.data import load_local_file

    fields = task.template.fields
    from_stream = source in (None, STANDARD_STREAM)
    if len(fields) > 1 and from_stream:
        raise UsageError(f"task {task.name!r} reads {list(fields)} per example: give them as columns of an "
                         "--input file (JSONL, CSV or TSV)")
    if text_column and (from_stream or len(fields) > 1):
        raise UsageError("--text-column names the text column of an --input file for a task of one text field; "
                         + ("standard input holds one text per line" if from_stream else
                            f"task {task.name!r} reads the columns {list(fields)}"))
    if from_stream:
        return [fields[0]], [line.rstrip("\n") for line in sys.stdin if line.strip()]
    data = load_local_file(source)
    if len(fields) > 1:
        missing = [name for name in fields if name not in data.column_names]
        if missing:
            raise UsageError(f"{source} has columns {data.column_names} but task {task.name!r} reads {list(fields)} "
                             f"(missing {missing})")
        return list(fields), [dict(zip(fields, values)) for values in zip(*(data[name] for name in fields))]
    column = text_column_of(data, source, task, text_column)
    return [column], ["" if text is None else str(text) for text in data[column]]


def text_column_of(data, source: str, task, text_column: str | None) -> str:
    """Which column of ``data`` holds the texts (see ``read_texts``)."""
    if text_column:
        if text_column not in data.column_names:
            raise UsageError(f"{source} has no column {text_column!r} (--text-column); its columns: "
                             f"{data.column_names}")
        return text_column
    for candidate in (task.columns.get("sentence"), task.template.fields[0], "text"):
        if candidate in data.column_names:
            return candidate
    textual = [name for name, feature in data.features.items()
               if getattr(feature, "dtype", None) in ("string", "large_string")]
    if len(textual) == 1:
        return textual[0]
    raise UsageError(f"{source} has columns {data.column_names}: name the one with the texts with --text-column")


def write_predictions(rows: list[dict], output: str | None, output_format: str, label_names) -> None:
    """JSON lines (the probabilities as an object), or CSV/TSV with a ``probability <label>`` column per class."""
    def write(handle) -> None:
        if output_format == "jsonl":
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            return
        writer = csv.writer(handle, delimiter="\t" if output_format == "tsv" else ",", lineterminator="\n")
        text_columns = [key for key in rows[0] if key not in ("label", "probabilities")]
        writer.writerow([*text_columns, "label", *(f"probability {name}" for name in label_names)])
        for row in rows:
            writer.writerow([*(row[key] for key in text_columns), row["label"],
                             *(row["probabilities"][name] for name in label_names)])

    if output in (None, STANDARD_STREAM):
        write(sys.stdout)
        return

    def write_file(path: str) -> None:
        with open(path, "w", encoding="utf-8", newline="") as handle:
            write(handle)

    write_atomic(output, write_file)


def register(commands) -> None:
    predict = commands.add_parser("predict", help="label new texts with a learned prompt")
    add_task_arguments(predict, data=False, required=False,
                       task_help=" (when omitted: the task a --learned prompt was trained with; --prompt needs it)")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--learned", metavar="DIR", help="a learned prompt folder (discrete or soft)")
    source.add_argument("--prompt", help="a prompt text, placed by --task's template")
    predict.add_argument("--input", metavar="FILE",
                         help="the texts: a .jsonl, .csv or .tsv file; - or omitted: one text per line on standard "
                              "input")
    predict.add_argument("--text-column", help="the --input column holding the texts (when omitted: the task's own "
                                               "text column, 'sentence' or 'text', else the file's only text column)")
    predict.add_argument("--output", metavar="FILE",
                         help="where the labels go: a .jsonl, .csv or .tsv file; - or omitted: JSON lines on standard "
                              "output")
    predict.add_argument("--model", default="auto",
                         help="task LM (auto: the one a --learned prompt was trained with, else as eval's --model)")
    predict.add_argument("--batch-size", type=positive_int, default=32, help="texts per forward pass")
    add_dtype_argument(predict)
    predict.add_argument("--quiet", action="store_true", help="no progress bar")
    predict.set_defaults(run=cmd_predict)
