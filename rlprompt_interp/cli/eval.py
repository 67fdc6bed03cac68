"""``rlprompt-interp eval``: accuracy and interpretability of a prompt on a task.

A style-transfer task (``--task yelp-style``) is scored as ``style-eval`` scores it, with its defaults
for the flags ``eval`` does not share.
"""

from __future__ import annotations

import argparse

from ..atomic import write_json_atomic
from ..prompts import task_model
from .common import add_eval_input_arguments, add_task_arguments, task_for_prompt


def cmd_eval(args: argparse.Namespace) -> int:
    from ..metrics.report import PROMPT_SCORER, build_report
    from ..models import load_lm
    from ..prompts import LearnedPrompt
    from ..tasks.style_transfer import is_style_task

    prompt = LearnedPrompt.load(args.learned) if args.learned else args.prompt
    if is_style_task(args.task):  # yelp-style: rewrites scored for content, style and fluency
        from ..style.evaluation import evaluate_style_prompt

        # only the flags eval shares with style-eval; the others (e.g. --top-k) mean something else here
        scorer = "auto" if args.scorer == PROMPT_SCORER else args.scorer  # style-eval's fluency scorer
        evaluate_style_prompt(args.task, prompt, data_dir=args.data_dir, model=args.model, scorer=scorer,
                              split=args.split, limit=args.limit, batch_size=args.batch_size, dtype=args.dtype,
                              output=args.output, progress=not args.quiet)
        return 0
    task, definition = task_for_prompt(args, prompt)  # a learned prompt's own template and verbalizers
    task.check_splits([args.split])  # a bad file or column stops before the model loads
    lm = load_lm(task_model(prompt, args.model), role="task", dtype=args.dtype)
    report = build_report(task, lm, prompt, split=args.split, limit=args.limit, batch_size=args.batch_size,
                          scorer=None if args.no_perplexity else args.scorer, unembed_metric=args.unembed_metric,
                          readout_metric=args.readout_metric, top_k=args.top_k,
                          faithfulness_for_discrete=not args.no_faithfulness, dtype=args.dtype,
                          progress=not args.quiet)
    report.classification.extra["model"] = lm.spec
    if definition is not None:
        report.classification.extra["task_definition"] = definition
    print(report.format())
    if args.output:
        write_json_atomic(args.output, report.to_dict())
        print(f"report written to {args.output}")
    return 0


def register(commands) -> None:
    from ..metrics.report import add_report_arguments

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
