"""``rlprompt-interp train --agent {rlprompt,soft-prompt,pez,wayward}``: learn a prompt, save it, test it.

Each agent module contributes its own flags (``add_arguments(group)``) and builds itself from the
parsed arguments (``from_cli_args(args) -> Agent``); the flags below are shared by every agent.
"""

from __future__ import annotations

import argparse
import importlib

from ..atomic import write_json_atomic
from .common import add_task_arguments, build_task


def agent_modules() -> dict:
    """Agent name -> the module of its class (``agents.AGENTS``), which holds ``add_arguments(group)``
    and ``from_cli_args(args)``."""
    from ..agents import AGENTS

    return {name: importlib.import_module(spec.partition(":")[0]) for name, spec in AGENTS.items()}


def cmd_train(args: argparse.Namespace) -> int:
    from ..evaluation import evaluate_prompt
    from ..models import load_lm

    task = build_task(args)
    agent = agent_modules()[args.agent].from_cli_args(args)
    learned = agent.fit(task, prompt_length=args.prompt_length, steps=args.steps, seed=args.seed,
                        output_dir=args.output, resume=args.resume)
    if args.test_eval:
        lm = load_lm(learned.provenance.get("task_model", args.model), role="task", dtype=args.dtype)
        report = evaluate_prompt(task, lm, learned, split="test", batch_size=args.eval_batch_size,
                                 progress=not args.quiet)
        learned.scores["test_accuracy"] = report.accuracy
        print(report.format())
    learned.save(args.output)
    write_json_atomic(f"{args.output}/scores.json", learned.scores)
    print(f"learned prompt {learned.text!r} saved to {args.output}")
    return 0


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
    common.add_argument("--seed", type=int, default=0)
    common.add_argument("--lr", type=float, default=None, help="learning rate (default: the agent's own)")
    common.add_argument("--scorer", default="auto", help="perplexity scorer LM (gpt2-xl online, smollm2-135m offline)")
    common.add_argument("--eval-every", type=int, default=50, help="evaluate on the dev split every K steps")
    common.add_argument("--eval-batch-size", type=int, default=32)
    common.add_argument("--output", required=True, help="folder for checkpoints and the learned prompt")
    common.add_argument("--resume", action="store_true", help="continue from the checkpoint in --output")
    common.add_argument("--dtype", default="auto")
    common.add_argument("--no-test-eval", dest="test_eval", action="store_false",
                        help="skip the test-split evaluation of the learned prompt")
    common.add_argument("--quiet", action="store_true")
    add_continuous_arguments(train.add_argument_group("--agent soft-prompt, pez, wayward"))
    for name, module in modules.items():
        module.add_arguments(train.add_argument_group(f"--agent {name}"))
    train.set_defaults(run=cmd_train)
