"""Style-transfer commands: ``rlprompt-interp train-style-classifier`` and ``rlprompt-interp style-eval``.

Both are thin shells over ``style.classifier.train_style_classifier`` and
``style.evaluation.evaluate_style_prompt``; ``rlprompt-interp eval --task yelp-style`` calls the
latter too (``cli/eval.py``), so the generic command works on this task.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_eval_input_arguments
from ..style.classifier import DEFAULT_CLASSIFIER_ENV, default_classifier_path


def add_style_task_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("style-transfer task")
    group.add_argument("--task", default="yelp-style",
                       help="yelp-style (or yelp-style:1_to_0), or a folder with <prefix>.{dev,test,ref}.{0,1}.txt")
    group.add_argument("--data-dir", help="folder with the task's files; without it, ../shared/data/yelp-style "
                                          "of a development checkout")


# --------------------------------------------------------------------------- train-style-classifier


def cmd_train_style_classifier(args: argparse.Namespace) -> int:
    import torch

    from ..tasks.style_transfer import get_style_task
    from ..style.classifier import train_style_classifier

    if args.threads:
        torch.set_num_threads(args.threads)
    task = get_style_task(args.task, data_dir=args.data_dir)
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
    group.add_argument("--generation-seed", type=int, default=0, help="seed of the sampled rewrites")
    group.add_argument("--fluency-threshold", type=float, help="outputs with a perplexity at most this count as fluent "
                                                               "(default: the 95th percentile of the inputs' own)")


def cmd_style_eval(args: argparse.Namespace) -> int:
    from ..prompts import LearnedPrompt
    from ..style.evaluation import evaluate_style_prompt

    evaluate_style_prompt(args.task, LearnedPrompt.load(args.learned) if args.learned else args.prompt,
                          data_dir=args.data_dir, direction=args.direction, model=args.model, scorer=args.scorer,
                          classifier=args.style_classifier, split=args.split, limit=args.limit,
                          num_samples=args.num_samples, top_k=args.top_k, length_ratio=args.length_ratio,
                          batch_size=args.batch_size, seed=args.generation_seed,
                          fluency_threshold=args.fluency_threshold, dtype=args.dtype, output=args.output,
                          progress=not args.quiet)
    return 0


def register(commands) -> None:
    train = commands.add_parser("train-style-classifier",
                                help="train a style classifier (head over MiniLM embeddings) on a style corpus")
    add_style_task_arguments(train)
    train.add_argument("--output", help=f"folder to write (default ${DEFAULT_CLASSIFIER_ENV} or "
                                        f"{default_classifier_path()})")
    train.add_argument("--encoder", default="minilm-l6", help="sentence encoder (embedded name or folder)")
    train.add_argument("--head", default="logreg", choices=["logreg", "mlp"], help="logistic regression or an MLP (--hidden units)")
    train.add_argument("--hidden", type=int, default=256, help="hidden units of the mlp head")
    train.add_argument("--epochs", type=int, default=300, help="training epochs of the head")
    train.add_argument("--lr", type=float, default=1e-2, help="learning rate of the head")
    train.add_argument("--weight-decay", type=float, default=1e-4, help="weight decay of the head")
    train.add_argument("--limit-per-style", type=int, help="use at most N training sentences of each style")
    train.add_argument("--seed", type=int, default=0, help="seed of the head's initialisation")
    train.add_argument("--threads", type=int, help="torch threads (e.g. 1 on a shared machine)")
    train.add_argument("--no-test", action="store_true", help="skip the test-accuracy report")
    train.add_argument("--no-cache", action="store_true", help="do not cache sentence embeddings on disk")
    train.set_defaults(run=cmd_train_style_classifier)

    evaluate = commands.add_parser("style-eval",
                                   help="content, style, fluency and BLEU of a prompt on a style-transfer task")
    add_style_task_arguments(evaluate)
    evaluate.add_argument("--model", default="auto", help="task LM that rewrites the inputs")
    add_eval_input_arguments(evaluate)
    evaluate.add_argument("--output", help="write the report as JSON here; the outputs go beside it as TSV")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bars")
    add_style_eval_arguments(evaluate)
    evaluate.set_defaults(run=cmd_style_eval)
