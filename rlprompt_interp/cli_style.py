"""Style-transfer commands: ``rlprompt-interp train-style-classifier`` and ``rlprompt-interp style-eval``.

``rlprompt-interp eval --task yelp-style`` is routed to ``style-eval`` by ``cli.cmd_eval`` (see
``eval_from_generic_args``), so the generic command works on this task too.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .models import cache_dir

DEFAULT_CLASSIFIER_ENV = "RLPROMPT_INTERP_STYLE_CLASSIFIER"


def default_classifier_path() -> Path:
    """Where ``train-style-classifier`` writes by default and ``style-eval`` looks by default."""
    import os

    return Path(os.environ.get(DEFAULT_CLASSIFIER_ENV) or cache_dir() / "style-classifier-yelp")


def resolve_classifier(spec: str | None) -> str:
    from .style_classifier import StyleClassifierError

    if spec:
        return spec
    path = default_classifier_path()
    if not path.is_dir():
        raise StyleClassifierError(
            f"no style classifier given and none at the default {path}; train one with "
            "`rlprompt-interp train-style-classifier --data-dir ../shared/data/yelp-style` (10 to 20 minutes on one CPU "
            "core), or pass --style-classifier with a folder or a Hugging Face classifier"
        )
    return str(path)


def add_style_task_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("style-transfer task")
    group.add_argument("--task", default="yelp-style",
                       help="yelp-style (or yelp-style:1_to_0), or a folder with <prefix>.{dev,test,ref}.{0,1}.txt")
    group.add_argument("--data-dir", help="folder with the task's files; without it, ../shared/data/yelp-style "
                                          "of a development checkout")


def build_style_task(args: argparse.Namespace, direction: str | None = None):
    from .tasks.style_transfer import get_style_task

    return get_style_task(args.task, data_dir=getattr(args, "data_dir", None), direction=direction)


# --------------------------------------------------------------------------- train-style-classifier


def cmd_train_style_classifier(args: argparse.Namespace) -> int:
    import torch

    from .style_classifier import train_style_classifier

    if args.threads:
        torch.set_num_threads(args.threads)
    task = build_style_task(args)
    train = task.style_texts("train")
    test = None if args.no_test else task.style_texts("test")
    classifier = train_style_classifier(train, test_texts=test, styles=task.style_names, encoder=args.encoder,
                                        head=args.head, hidden=args.hidden, epochs=args.epochs, lr=args.lr,
                                        weight_decay=args.weight_decay, limit_per_style=args.limit_per_style,
                                        seed=args.seed, cache=not args.no_cache)
    classifier.config["task"] = task.name
    output = Path(args.output) if args.output else default_classifier_path()
    classifier.save(output)
    print(f"style classifier saved to {output}")
    return 0


# --------------------------------------------------------------------------- style-eval


def add_style_eval_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("style-transfer evaluation")
    group.add_argument("--direction", choices=["0_to_1", "1_to_0", "both"],
                       help="which direction (default: the learned prompt's, else both)")
    group.add_argument("--style-classifier", help="classifier folder (train-style-classifier) or HF classifier; "
                                                  f"default ${DEFAULT_CLASSIFIER_ENV} or {default_classifier_path()}")
    group.add_argument("--scorer", default="auto", help="LM whose perplexity of the outputs is the fluency "
                                                        "(default: gpt2-xl online, smollm2-135m offline)")
    group.add_argument("--num-samples", type=int, default=1, help="rewrites sampled per input; the best by "
                                                                  "content+style is kept (RLPrompt: 32)")
    group.add_argument("--top-k", type=int, default=10, help="top-k sampling of the rewrites")
    group.add_argument("--length-ratio", type=float, default=1.5, help="output tokens at most this times the input's")
    group.add_argument("--generation-seed", type=int, default=0)
    group.add_argument("--fluency-threshold", type=float, help="outputs with a perplexity at most this count as fluent "
                                                               "(default: the 95th percentile of the inputs' own)")


def cmd_style_eval(args: argparse.Namespace) -> int:
    from .cli import write_json
    from .models import load_lm
    from .prompts import LearnedPrompt
    from .style_eval import evaluate_style_transfer

    learned = LearnedPrompt.load(args.learned) if getattr(args, "learned", None) else None
    prompt = learned.text if learned is not None else (getattr(args, "prompt", "") or "")
    provenance = learned.provenance if learned is not None else {}
    direction = getattr(args, "direction", None)
    task_name = args.task
    if ":" in task_name:
        task_name, _, named = task_name.partition(":")
        direction = direction or named
    if not direction:
        direction = provenance.get("direction") or (provenance.get("config") or {}).get("direction") or "both"
    directions = ["0_to_1", "1_to_0"] if direction == "both" else [direction]
    model = args.model
    if model in (None, "auto") and learned is not None:
        model = provenance.get("task_model", provenance.get("model", "auto"))
    lm = load_lm(model, role="task", dtype=getattr(args, "dtype", "auto"))
    scorer = load_lm(getattr(args, "scorer", "auto"), role="scorer", dtype=getattr(args, "dtype", "auto"))
    classifier = resolve_classifier(getattr(args, "style_classifier", None))
    output = Path(args.output) if getattr(args, "output", None) else None
    reports = {}
    for direction in directions:
        task = build_style_task(argparse.Namespace(task=task_name, data_dir=getattr(args, "data_dir", None)),
                                direction)
        outputs_file = None
        if output is not None:
            outputs_file = output.with_name(f"{output.stem}.{direction}.outputs.tsv")
        report = evaluate_style_transfer(
            task, lm, prompt, classifier=classifier, scorer=scorer, split=getattr(args, "split", "test"),
            limit=getattr(args, "limit", None), num_samples=getattr(args, "num_samples", 1),
            top_k=getattr(args, "top_k", 10), length_ratio=getattr(args, "length_ratio", 1.5),
            batch_size=getattr(args, "batch_size", 32), seed=getattr(args, "generation_seed", 0),
            fluency_threshold=getattr(args, "fluency_threshold", None), outputs_file=outputs_file,
            progress=not getattr(args, "quiet", False))
        print(report.format())
        reports[direction] = report.to_dict()
    if output is not None:
        write_json(output, {"prompt": prompt, "task_model": lm.spec, "scorer": scorer.spec,
                            "style_classifier": classifier, "directions": reports})
        print(f"report written to {output} (outputs beside it)")
    return 0


GENERIC_EVAL_FLAGS = ("task", "data_dir", "model", "prompt", "learned", "split", "limit", "batch_size", "dtype",
                      "output", "quiet", "scorer")


def eval_from_generic_args(args: argparse.Namespace) -> int:
    """``rlprompt-interp eval --task yelp-style ...``: the generic eval flags, style-eval defaults for the rest
    (flags of other eval reports that share a name, such as ``--top-k``, mean something else there)."""
    defaults = build_style_eval_parser().parse_args([])
    for name in GENERIC_EVAL_FLAGS:
        if getattr(args, name, None) is not None:
            setattr(defaults, name, getattr(args, name))
    return defaults.run(defaults)


def build_style_eval_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlprompt-interp style-eval", add_help=False)
    add_style_eval_command_arguments(parser)
    return parser


def register(commands) -> None:
    train = commands.add_parser("train-style-classifier", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                help="train a style classifier (head over MiniLM embeddings) on a style corpus")
    add_style_task_arguments(train)
    train.add_argument("--output", help=f"folder to write (default ${DEFAULT_CLASSIFIER_ENV} or "
                                        f"{default_classifier_path()})")
    train.add_argument("--encoder", default="minilm-l6", help="sentence encoder (embedded name or folder)")
    train.add_argument("--head", default="logreg", choices=["logreg", "mlp"])
    train.add_argument("--hidden", type=int, default=256, help="hidden units of the mlp head")
    train.add_argument("--epochs", type=int, default=300)
    train.add_argument("--lr", type=float, default=1e-2)
    train.add_argument("--weight-decay", type=float, default=1e-4)
    train.add_argument("--limit-per-style", type=int, help="use at most N training sentences of each style")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--threads", type=int, help="torch threads (e.g. 1 on a shared machine)")
    train.add_argument("--no-test", action="store_true", help="skip the test-accuracy report")
    train.add_argument("--no-cache", action="store_true", help="do not cache sentence embeddings on disk")
    train.set_defaults(run=cmd_train_style_classifier)

    evaluate = commands.add_parser("style-eval", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                   help="content, style, fluency and BLEU of a prompt on a style-transfer task")
    add_style_eval_command_arguments(evaluate)


def add_style_eval_command_arguments(evaluate: argparse.ArgumentParser) -> None:
    add_style_task_arguments(evaluate)
    evaluate.add_argument("--model", default="auto", help="task LM that rewrites the inputs")
    from .cli import add_eval_input_arguments

    add_eval_input_arguments(evaluate)
    evaluate.add_argument("--output", help="write the report as JSON here; the outputs go beside it as TSV")
    evaluate.add_argument("--quiet", action="store_true")
    add_style_eval_arguments(evaluate)
    evaluate.set_defaults(run=cmd_style_eval)
