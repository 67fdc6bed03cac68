"""``rlprompt-interp train --agent {rlprompt,soft-prompt,pez,wayward,grpo,rloo}``: learn a prompt, save it, test it.

Every flag is a config field (``config.option``), its name, default, help and bounds declared once:
``train``'s own (:class:`TrainArguments`, the run's length and seed) and the chosen agent's config
(``Agent.config_class``, section by section). The parser is built for the agent the command line (or
its ``--config`` file) names, so ``train --agent pez --help`` lists PEZ's options with PEZ's defaults.
``--config FILE`` or ``--recipe NAME`` reads options from a file, flags overriding it; every run first
writes ``OUTPUT/config.yaml``, which ``--config`` replays.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import platform
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..agents import AGENTS, agent_class
from ..atomic import write_json_atomic
from ..config import (ENVIRONMENT, FIT_OPTIONS, Config, ConfigFileParser, RunConfig, add_config_arguments,
                      config_from_args, option, read_config_file, recipe_path, write_config_file)
from ..notices import warn
from ..tracking import add_report_to_argument, track_run
from .common import DTYPE_CHOICES, EVAL_DTYPE, Parser, add_task_arguments, build_task

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
    eval_batch_size: int = option(32, "examples per forward pass of an evaluation (the test split's; soft-prompt, "
                                      "pez and wayward: the dev split's too)", at_least=1)
    eval_dtype: str = option(EVAL_DTYPE, "dtype of the final test evaluation (float32: the same accuracy on every CPU; "
                                         "auto: as --dtype auto)", choices=DTYPE_CHOICES)

    def resolved(self, task=None) -> "TrainArguments":
        from ..models import resolve_dtype_name

        return dataclasses.replace(self, eval_dtype=resolve_dtype_name(self.eval_dtype))


def cmd_train(args: argparse.Namespace, parser: ConfigFileParser) -> int:
    from ..evaluation import evaluate_prompt
    from ..models import clear_model_cache, compute_record, load_lm

    check_arguments(args, parser)
    cls = agent_class(args.agent)
    config = cls.config_class.from_args(args)  # the agent's own options are checked here, before the task loads
    if args.config:
        say_what_differs(args.config, config.dtype)
    task = build_task(args)
    check_task_data(task, args)
    config = config.resolved(task)
    resolve_arguments(args, config, task)
    agent = cls(config)
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
            learned.scores["test_balanced_accuracy"] = report.balanced_accuracy
            learned.scores["test_computed_with"] = report.computed_with
            tracker.log({"test/accuracy": report.accuracy}, step=len(learned.curve) or steps)
            print(report.format())
    learned.save(args.output)
    write_json_atomic(f"{args.output}/scores.json", learned.scores)
    print(f"learned prompt {learned.text!r} saved to {args.output}")
    return 0


def check_arguments(args: argparse.Namespace, parser: ConfigFileParser) -> None:
    """Refuse, before any model loads, values that would fail later or train nothing (one clear line each):
    the configs check their fields' bounds as they are built (the agent's own just after), and
    the ``--reward-fn`` modules are imported now, so a typo in one does not wait for the models."""
    from ..agents.rlprompt import reward_function_terms

    config_from_args(TrainArguments, args)
    config_from_args(RunConfig, args)
    if "reward_fn" in args:
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


def resolve_arguments(args: argparse.Namespace, config, task) -> None:
    """Put what ``auto`` resolved to (models, dtypes, condition) and the task's template and verbalizers into
    ``args``, so the written config.yaml records what ran and replays it as it ran."""
    for name, value in config.options().items():
        setattr(args, name, value)
    args.eval_dtype = config_from_args(TrainArguments, args).resolved(task).eval_dtype
    args.template, args.verbalizers = task.template.text, list(task.verbalizers)


def say_what_differs(config_file: str, dtype: str) -> None:
    """One line when ``config_file`` was written on another kind of machine (device, bf16 instructions, library
    versions); its values are replayed as written, not re-resolved for this machine."""
    from ..models import compute_record

    try:
        recorded = yaml.safe_load(Path(config_file).read_text()).get(ENVIRONMENT) or {}
    except (OSError, AttributeError, yaml.YAMLError):
        return
    then, now = recorded.get("computed_with") or {}, compute_record(dtype)
    differences = []
    if then.get("device") and then["device"].split(":")[0] != now["device"].split(":")[0]:
        differences.append(f"device {then['device']} -> {now['device']}")
    if now["dtype"] == "bfloat16" and now["device"] == "cpu" and not now["cpu_bf16"]:
        differences.append("bfloat16 is emulated on this CPU (no AMX/AVX512-BF16 instructions): slow; --dtype float32 "
                           "runs fast here but computes other numbers")
    versions = recorded.get("versions") or {}
    differences += [f"{name} {versions[name]} -> {_version(name)}" for name in ("torch", "transformers", "trl")
                    if versions.get(name) and versions[name] != _version(name)]
    if differences:
        warn(f"{config_file} was written on another kind of machine; replaying its values as written: "
             + "; ".join(differences))


def write_run_config(args: argparse.Namespace, parser: ConfigFileParser, task) -> dict:
    """Write ``OUTPUT/config.yaml`` atomically: every option the agent reads, section by section, and an
    ``environment`` section (task definition, the resolved dtype and device, package versions) that ``--config``
    leaves out."""
    from ..models import compute_record

    settings = parser.section_values(args, leave_out=("config", "recipe", "resume"))
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


DEFAULT_AGENT = TrainArguments.__dataclass_fields__["agent"].default


def chosen_agent(argv: list[str]) -> str:
    """The agent a ``train`` command line names: ``--agent``, else its ``--config``/``--recipe`` file's, else the
    default (an unreadable file or unknown name is left for the full parse to report)."""
    scan = argparse.ArgumentParser(add_help=False)
    for flag in ("--agent", "--config", "--recipe"):
        scan.add_argument(flag)
    given, _ = scan.parse_known_args(argv)
    if given.agent:
        return given.agent
    for name, read in ((given.config, read_config_file), (given.recipe, lambda n: read_config_file(recipe_path(n)))):
        try:
            if name and read(name).get("agent"):
                return read(name)["agent"]
        except (OSError, ValueError):
            pass
    return DEFAULT_AGENT


def add_train_arguments(train: ConfigFileParser, agent: str) -> None:
    """Every flag of ``train --agent AGENT``: the task's, train's own, then the agent's config section by section
    (a field already declared, such as ``quiet`` or ``eval_batch_size``, is one flag for both)."""
    add_task_arguments(train)
    common = train.add_section("training", "training")
    train.add_config_file_arguments(common)
    declared = set(add_config_arguments(common, TrainArguments))
    declared |= set(add_config_arguments(common, RunConfig, skip=[f for f in RunConfig.__dataclass_fields__
                                                                   if f not in FIT_OPTIONS]))
    declared |= set(add_report_to_argument(common))
    cls = agent_class(agent)
    train.set_defaults(agent=agent, steps=cls.default_steps)  # the chosen agent, its run length (rlprompt: None)
    for key, config, title in cls.config_class.sections(agent):
        declared |= set(add_config_arguments(train.add_section(key, title), config, skip=declared))
    cls.add_deprecated_arguments(train)
    train.set_defaults(run=lambda args: cmd_train(args, train))


def register(commands) -> None:
    description = (f"Learn a prompt with one of the agents. The options listed are --agent {DEFAULT_AGENT}'s; "
                   "`train --agent NAME --help` lists another agent's.")
    train = commands.add_parser("train", help="learn a prompt with one of the agents", description=description)
    add_train_arguments(train, DEFAULT_AGENT)
    parsers = {DEFAULT_AGENT: train}

    def for_agent(argv: list[str]) -> ConfigFileParser:
        agent = chosen_agent(argv)
        if agent not in AGENTS:
            return train  # its --agent choices report the unknown name
        if agent not in parsers:
            parsers[agent] = Parser(prog=train.prog, description=description.replace(
                f"--agent {DEFAULT_AGENT}'s", f"--agent {agent}'s"))
            add_train_arguments(parsers[agent], agent)
        return parsers[agent]

    train.choose = for_agent
