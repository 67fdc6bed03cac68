"""``rlprompt-interp train --agent {rlprompt,soft-prompt,pez,wayward}``: learn a prompt, save it, test it.

Each agent module contributes its own flags (``add_arguments(group)``) and builds itself from the
parsed arguments (``from_cli_args(args) -> Agent``); the flags below are shared by every agent.
"""

from __future__ import annotations

import argparse
import importlib

from ..atomic import write_json_atomic
from ..tracking import add_report_to_argument, track_run
from .common import AUTO_DTYPE_HELP, EVAL_DTYPE, UsageError, add_task_arguments, build_task, positive_int


def agent_modules() -> dict:
    """Agent name -> the module of its class (``agents.AGENTS``), which holds ``add_arguments(group)``
    and ``from_cli_args(args)``."""
    from ..agents import AGENTS

    return {name: importlib.import_module(spec.partition(":")[0]) for name, spec in AGENTS.items()}


def cmd_train(args: argparse.Namespace) -> int:
    from ..evaluation import evaluate_prompt
    from ..models import clear_model_cache, compute_record, load_lm

    check_arguments(args)
    task = build_task(args)
    agent = agent_modules()[args.agent].from_cli_args(args)
    with track_run(args.report_to, args.output, config={**vars(args), "computed_with": compute_record(args.dtype)}) \
            as tracker:
        agent.on_log = tracker.log_row
        learned = agent.fit(task, prompt_length=args.prompt_length, steps=args.steps, seed=args.seed,
                            output_dir=args.output, resume=args.resume)
        if args.test_eval:
            del agent  # the training models (a gpt2-xl scorer, bf16 copies) are freed before the fp32 test model loads
            clear_model_cache()
            lm = load_lm(learned.provenance.get("task_model", args.model), role="task", dtype=args.eval_dtype)
            report = evaluate_prompt(task, lm, learned, split="test", batch_size=args.eval_batch_size,
                                     progress=not args.quiet)
            learned.scores["test_accuracy"] = report.accuracy
            learned.scores["test_computed_with"] = report.computed_with
            tracker.log({"test/accuracy": report.accuracy}, step=args.steps)
            print(report.format())
    learned.save(args.output)
    write_json_atomic(f"{args.output}/scores.json", learned.scores)
    print(f"learned prompt {learned.text!r} saved to {args.output}")
    return 0


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse, before any model loads, values that would fail later or train nothing (one clear line each)."""
    def at_least(name: str, minimum: float, why: str, *, strictly: bool = False, most: float | None = None) -> None:
        value = getattr(args, name, None)
        if value is None:
            return
        if (value <= minimum if strictly else value < minimum) or (most is not None and value > most):
            flag = "--" + name.replace("_", "-")
            bound = f"above {minimum:g}" if strictly else f"at least {minimum:g}"
            raise UsageError(f"{flag} must be {bound}{f' and at most {most:g}' if most is not None else ''}, got "
                             f"{value:g}: {why}")

    at_least("steps", 1, "a run of no steps learns nothing (evaluate a prompt with `rlprompt-interp eval`)")
    if args.agent != "wayward":  # wayward's prompt is as long as its target text (0 says so)
        at_least("prompt_length", 1, "a prompt needs at least one token")
    at_least("eval_every", 1, "the best prompt is chosen on dev every K steps")
    at_least("lr", 0, "a learning rate is a step size, e.g. 1e-3", strictly=True)
    at_least("max_minutes", 0, "the training time budget", strictly=True)
    if args.agent != "rlprompt":
        return
    at_least("prompts_per_step", 1, "each step samples this many prompts")
    at_least("examples_per_step", 1, "each prompt is scored on this many training examples")
    at_least("checkpoint_every", 1, "steps between checkpoints")
    at_least("mlp_width", 1, "the width of the policy's MLP")
    at_least("top_k", 0, "0 samples from every token")
    at_least("top_p", 0, "the probability mass of the nucleus", strictly=True, most=1)
    at_least("target_rate", 0, "the Polyak rate of the target network", strictly=True, most=1)
    at_least("fluent_top_k", 1, "the policy keeps its LM's top-k tokens")
    at_least("target_period", 1, "steps between target-network copies")
    at_least("max_grad_norm", 0, "gradients are clipped to this norm", strictly=True)
    if getattr(args, "zscore", False) and args.prompts_per_step < 2:
        raise UsageError("--prompts-per-step 1 with z-scores gives every prompt the shaped reward 0, so nothing is "
                         "learned: sample at least 2 prompts per step, or pass --no-zscore")


def register(commands) -> None:
    from ..agents.continuous import add_continuous_arguments

    modules = agent_modules()
    train = commands.add_parser("train", help="learn a prompt with one of the agents",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_task_arguments(train)
    common = train.add_argument_group("training (every agent)")
    common.add_argument("--agent", default="rlprompt", choices=sorted(modules))
    common.add_argument("--model", default="auto", help="task LM (hub id, folder or embedded name)")
    common.add_argument("--prompt-length", type=int, default=5)
    common.add_argument("--steps", type=int, default=1000)
    common.add_argument("--max-minutes", type=float, help="stop training after this many minutes (over resumes)")
    common.add_argument("--seed", type=int, default=0)
    common.add_argument("--lr", type=float, default=None, help="learning rate (default: the agent's own)")
    common.add_argument("--scorer", default="auto", help="perplexity scorer LM (gpt2-xl online, smollm2-135m offline)")
    common.add_argument("--eval-every", type=int, default=50, help="evaluate on the dev split every K steps")
    common.add_argument("--eval-batch-size", type=positive_int, default=32)
    common.add_argument("--output", required=True, help="folder for checkpoints and the learned prompt")
    common.add_argument("--resume", action="store_true", help="continue from the checkpoint in --output")
    common.add_argument("--dtype", default="auto", help=f"dtype of the frozen models during training; {AUTO_DTYPE_HELP}; "
                                                        "or float32, bfloat16, float16 (a run resumes only in its own dtype)")
    common.add_argument("--eval-dtype", default=EVAL_DTYPE, help="dtype of the final test evaluation (float32: the "
                                                                 "same accuracy on every CPU; auto: as --dtype auto)")
    common.add_argument("--no-test-eval", dest="test_eval", action="store_false",
                        help="skip the test-split evaluation of the learned prompt")
    common.add_argument("--quiet", action="store_true")
    add_report_to_argument(common)
    add_continuous_arguments(train.add_argument_group("--agent soft-prompt, pez, wayward"))
    for name, module in modules.items():
        module.add_arguments(train.add_argument_group(f"--agent {name}"))
    train.set_defaults(run=cmd_train)
