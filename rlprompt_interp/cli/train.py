"""``rlprompt-interp train --agent {rlprompt,soft-prompt,pez,wayward,grpo,rloo}``: learn a prompt, save it, test it.

The flags every agent shares, and every flag of the RL agent, are config fields (``config.option``):
their names, defaults, help and bounds are declared once there. Each agent module adds its flags
(``add_arguments(parser)``) and builds itself from the parsed arguments (``from_cli_args(args) -> Agent``).
``--config FILE`` or ``--recipe NAME`` reads options from a file, flags overriding it; every run first
writes ``OUTPUT/config.yaml``, which ``--config`` replays.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import platform
from dataclasses import dataclass

from ..agents import AGENTS
from ..atomic import write_json_atomic
from ..config import (Config, ConfigFileParser, ModelConfig, RunConfig, add_config_arguments, config_from_args,
                      option, write_config_file)
from ..tracking import add_report_to_argument, track_run
from .common import DTYPE_CHOICES, EVAL_DTYPE, add_task_arguments, build_task

CONFIG_FILE = "config.yaml"
VERSIONS = ("rlprompt-interp", "torch", "transformers", "accelerate", "datasets", "trl", "peft", "gymnasium")


@dataclass
class TrainArguments(Config):
    """What ``train`` does around the agent's run: which agent, where it writes, whether it resumes and tests."""

    agent: str = option("rlprompt", "the prompt-learning method", choices=tuple(sorted(AGENTS)))
    output: str | None = option(None, "folder for checkpoints, the learned prompt and the run's config.yaml",
                                required=True)
    resume: bool = option(False, "continue from the checkpoint in --output")
    test_eval: bool = option(True, "evaluate the learned prompt on the test split")
    eval_batch_size: int = option(32, "examples per forward pass of the test evaluation", at_least=1)
    eval_dtype: str = option(EVAL_DTYPE, "dtype of the final test evaluation (float32: the same accuracy on every CPU; "
                                         "auto: as --dtype auto)", choices=DTYPE_CHOICES)


def agent_modules() -> dict:
    """Agent name -> the module of its class (``agents.AGENTS``), which holds ``add_arguments(parser)``
    and ``from_cli_args(args)``."""
    return {name: importlib.import_module(spec.partition(":")[0]) for name, spec in AGENTS.items()}


def cmd_train(args: argparse.Namespace, parser: ConfigFileParser) -> int:
    from ..evaluation import evaluate_prompt
    from ..models import clear_model_cache, compute_record, load_lm

    check_arguments(args, parser)
    agent = agent_modules()[args.agent].from_cli_args(args)  # the agent's own options are checked here
    task = build_task(args)
    check_task_data(task, args)
    settings = write_run_config(args, parser, task)
    flat = {key: value for section in settings.values() for key, value in section.items()}
    with track_run(args.report_to, args.output, config={**flat, "computed_with": compute_record(args.dtype)}) as tracker:
        agent.on_log = tracker.log_row
        steps = args.steps if args.steps is not None else agent.default_steps
        learned = agent.fit(task, prompt_length=args.prompt_length, steps=steps, seed=args.seed,
                            output_dir=args.output, resume=args.resume)
        if args.test_eval:
            del agent  # the training models (a gpt2-xl scorer, bf16 copies) are freed before the fp32 test model loads
            clear_model_cache()
            lm = load_lm(learned.provenance.get("task_model", args.model), role="task", dtype=args.eval_dtype)
            report = evaluate_prompt(task, lm, learned, split="test", batch_size=args.eval_batch_size,
                                     progress=not args.quiet)
            learned.scores["test_accuracy"] = report.accuracy
            learned.scores["test_computed_with"] = report.computed_with
            tracker.log({"test/accuracy": report.accuracy}, step=len(learned.curve) or steps)
            print(report.format())
    learned.save(args.output)
    write_json_atomic(f"{args.output}/scores.json", learned.scores)
    print(f"learned prompt {learned.text!r} saved to {args.output}")
    return 0


def check_arguments(args: argparse.Namespace, parser: ConfigFileParser) -> None:
    """Refuse, before any model loads, values that would fail later or train nothing (one clear line each):
    the configs check their fields' bounds as they are built (the agent's own, in ``from_cli_args``), and
    the ``--reward-fn`` modules are imported now, so a typo in one does not wait for the models."""
    from ..agents.rlprompt import reward_function_terms

    config_from_args(TrainArguments, args)
    config_from_args(RunConfig, args)
    reward_section = parser.sections.get("reward")
    if reward_section and args.agent in (reward_section.agents or (args.agent,)):
        reward_function_terms(args.reward_fn)


def check_task_data(task, args: argparse.Namespace) -> None:
    """Read every split the run will read before any model loads: training, dev where the task has one, the test
    split when it is evaluated, and every file a task names (a misspelled test file in a task.json is named now,
    not after the training, also with --no-test-eval). Records the columns read, for ``config.yaml``."""
    from ..tasks import TaskDataError

    if args.test_eval and not task.has_split("test"):
        raise TaskDataError(f"task {task.name!r} has no test split to evaluate the learned prompt on: give one "
                            "(test=PATH, or \"test\" in the task.json's files) or pass --no-test-eval")
    splits = [split for split in ("train", "dev", "test") if task.has_split(split)
              and (split != "test" or args.test_eval or task.files)]
    task.check_splits(splits if "train" in splits else ["train", *splits])
    if task.files:  # what was read, whether it came from the flags, the task.json or the defaults
        args.text_column, args.label_column = task.columns["sentence"], task.columns["label"]


def write_run_config(args: argparse.Namespace, parser: ConfigFileParser, task) -> dict:
    """Write ``OUTPUT/config.yaml`` atomically: every option the agent reads, section by section, and an
    ``environment`` section (task definition, the resolved dtype and device, package versions) that ``--config``
    leaves out."""
    from ..models import compute_record

    settings = parser.section_values(args, agent=args.agent, leave_out=("config", "recipe", "resume"))
    environment = {"task_definition": {"name": task.name, "template": task.template.text,
                                       "verbalizers": list(task.verbalizers), "description": task.describe()},
                   "computed_with": compute_record(args.dtype), "python": platform.python_version(),
                   "versions": {name: _version(name) for name in VERSIONS}}
    write_config_file(f"{args.output}/{CONFIG_FILE}", {**settings, "environment": environment})
    return settings


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def register(commands) -> None:
    from ..agents.continuous import add_continuous_arguments

    train = commands.add_parser("train", help="learn a prompt with one of the agents")
    add_task_arguments(train)
    common = train.add_section("training", "training (every agent)")
    train.add_config_file_arguments(common)
    add_config_arguments(common, TrainArguments)
    add_config_arguments(common, RunConfig)
    add_report_to_argument(common)
    add_config_arguments(train.add_section("models", "models (every agent)"), ModelConfig)
    add_continuous_arguments(train.add_section("continuous", "--agent soft-prompt, pez, wayward",
                                               agents=("soft-prompt", "pez", "wayward")))
    for module in dict.fromkeys(agent_modules().values()):
        module.add_arguments(train)
    train.set_defaults(run=lambda args: cmd_train(args, train))
