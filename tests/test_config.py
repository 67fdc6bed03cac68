"""Options declared once: config fields give the flags, refuse bad values in Python as on the command line,
and a run's written config.yaml replays it (flags overriding the file); recipes are shipped config files."""

import argparse
import dataclasses
import re
import warnings

import pytest
import yaml

from rlprompt_interp.agents import AGENTS, agent_class
from rlprompt_interp.agents.rlprompt import RewardConfig, RLPromptAgent, RLPromptConfig
from rlprompt_interp.algorithms import SQLConfig
from rlprompt_interp.cli import build_parser, main
from rlprompt_interp.cli.common import Parser
from rlprompt_interp.cli.train import TrainArguments
from rlprompt_interp.config import (FIT_OPTIONS, ConfigError, RunConfig, add_config_arguments, option, read_config_file,
                                    recipe_path)
from rlprompt_interp.models import resolve_dtype_name
from rlprompt_interp.notices import RLPromptWarning
from rlprompt_interp.policies import PolicyConfig
from rlprompt_interp.prompts import LearnedPrompt

pytestmark = pytest.mark.usefixtures("single_thread")


def train_parser(agent: str = "rlprompt"):
    """The parser ``train --agent AGENT`` parses with (built for that agent's config)."""
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    return train.choose(["--agent", agent])


def listed_flags(parser) -> list[argparse.Action]:
    return [action for action in parser._actions if action.help != argparse.SUPPRESS]


def flag_of(name: str, field: dataclasses.Field) -> str:
    return field.metadata.get("flag") or "--" + ("no-" if field.default is True else "") + name.replace("_", "-")


@pytest.mark.parametrize("agent", sorted(AGENTS))
def test_train_help_lists_every_option_of_each_agent_once_with_its_default_and_help(agent):
    parser = train_parser(agent)
    listed = listed_flags(parser)
    text = re.sub(r"\s+", "", parser.format_help())  # argparse wraps lines at spaces and hyphens
    config_class = agent_class(agent).config_class
    sections = [config for _, config, _ in config_class.sections(agent)]
    fields = {}
    for config in (TrainArguments, RunConfig, *sections):  # the first declaration of a name is its flag
        for field in dataclasses.fields(config):
            fields.setdefault(field.name, field)
    own = {field.name: field for config in sections for field in dataclasses.fields(config)}
    for name in {f.name for f in dataclasses.fields(TrainArguments)} | set(FIT_OPTIONS) | set(own):
        field = fields[name]
        flag = flag_of(name, field)
        owners = [action for action in listed if flag in action.option_strings]
        assert len(owners) == 1 and owners[0].dest == name, (agent, flag)
        assert re.sub(r"\s+", "", field.metadata["help"]) in text, (agent, flag)
        if name == "steps":  # the agent's run length
            assert owners[0].default == agent_class(agent).default_steps, agent
        elif name in own and field.type != "bool":  # one default: the agent's config's, whoever declares the flag
            default = own[name].default_factory() if own[name].default is dataclasses.MISSING else own[name].default
            assert owners[0].default == (default if default != {} else []), (agent, flag)
    unread = {"rlprompt": "--ppl-weight", "pez": "--prompts-per-step", "grpo": "--mlp-width", "soft-prompt": "--gamma"}
    if agent in unread:  # no flag of another agent
        assert not any(unread[agent] in action.option_strings for action in listed)
    assert "--lm-prior" not in text and "--batch-size-train" not in text  # deprecated spellings are not listed


def test_a_new_field_is_a_new_flag():
    @dataclasses.dataclass
    class Extended(SQLConfig):
        warmup_steps: int = option(0, "steps of linear learning-rate warm-up", at_least=0)

    parser = Parser(prog="x")
    add_config_arguments(parser, Extended)
    assert "--warmup-steps" in parser.format_help() and "learning-rate warm-up" in parser.format_help()
    args = parser.parse_args(["--warmup-steps", "7", "--target-rate", "0.01"])
    assert (args.warmup_steps, args.target_rate) == (7, 0.01)
    with pytest.raises(ConfigError, match="warmup_steps must be at least 0"):
        Extended(warmup_steps=-1)


def test_the_python_api_refuses_what_the_command_line_refuses():
    with pytest.raises(ConfigError, match="target_rate must be above 0 and at most 1"):
        RLPromptAgent(target_rate=2.0)
    with pytest.raises(ConfigError, match="top_p must be above 0 and at most 1"):
        PolicyConfig(top_p=1.5)
    with pytest.raises(ConfigError, match="loss must be one of"):
        SQLConfig(loss="huber")
    with pytest.raises(ConfigError, match="unknown reward 'fluency'"):
        RewardConfig(reward="gap=1,fluency=2")
    with pytest.raises(TypeError, match="no options \\['no_such_option'\\]"):
        RLPromptAgent(no_such_option=1)
    with pytest.warns(RLPromptWarning, match="'max_seconds' is deprecated; use 'max_minutes'"):
        agent = RLPromptAgent(lr=1e-3, prior_weight=1.0, shaped_range=[0, 20], reward="gap=1", max_seconds=90)
    assert agent.config.sql.lr == 1e-3 and agent.config.policy.prior_weight == 1.0
    assert agent.config.sql.shaped_range == (0, 20) and agent.config.sql.max_minutes == 1.5


def test_old_flag_spellings_still_work_with_a_warning():
    parser = build_parser()
    with pytest.warns(RLPromptWarning, match="--lm-prior is deprecated; use --prior-weight"):
        args = parser.parse_args(["train", "--task", "sst-2", "--output", "x", "--lm-prior", "1",
                                  "--sql-loss", "single", "--reward-shaping", "0", "1", "0", "20"])
    config = RLPromptConfig.from_args(args)
    assert config.policy.prior_weight == 1.0 and config.sql.loss == "single"
    assert config.sql.reward_range == (0, 1) and config.sql.shaped_range == (0, 20)


@pytest.fixture
def run_args(sst_files):
    return ["train", "--task", "sst-2", "--data-dir", str(sst_files), "--model", "tiny-gpt2", "--prompt-length", "3",
            "--prompts-per-step", "4", "--examples-per-step", "4", "--eval-every", "2", "--lr", "1e-3",
            "--mlp-width", "64", "--prior-weight", "0.5", "--quiet", "--no-test-eval", "--steps", "4"]


def without_times(curve):
    return [{k: v for k, v in row.items() if "time" not in k} for row in curve]  # time/sample, TRL's step_time


def test_a_run_writes_the_config_that_replays_it(tmp_path, run_args):
    assert main(run_args + ["--output", str(tmp_path / "A")]) == 0
    written = yaml.safe_load((tmp_path / "A" / "config.yaml").read_text())
    assert written["policy"]["prior_weight"] == 0.5 and written["sql"]["prompts_per_step"] == 4
    # what auto resolved to, not auto (offline: the embedded scorer)
    assert written["models"] == {"model": "tiny-gpt2", "scorer": "smollm2-135m", "dtype": resolve_dtype_name("auto")}
    assert written["environment"]["task_definition"]["verbalizers"] == [" negative", " positive"]
    environment = written["environment"]
    assert {"torch", "transformers"} <= set(environment["versions"]) and environment["computed_with"]["device"] == "cpu"
    assert set(written) >= {"task", "training", "policy", "sql", "reward"} and "pez" not in written

    assert main(["train", "--config", str(tmp_path / "A" / "config.yaml"), "--output", str(tmp_path / "B")]) == 0
    first, again = LearnedPrompt.load(tmp_path / "A"), LearnedPrompt.load(tmp_path / "B")
    assert [row["sample"] for row in again.curve] == [row["sample"] for row in first.curve]  # the same prompts
    assert without_times(again.curve) == without_times(first.curve) and again.text == first.text


def test_flags_override_the_config_file_wherever_they_stand(tmp_path, run_args):
    assert main(run_args + ["--output", str(tmp_path / "A")]) == 0
    config = str(tmp_path / "A" / "config.yaml")
    assert main(["train", "--steps", "2", "--config", config, "--output", str(tmp_path / "B")]) == 0
    assert main(["train", "--config", config, "--output", str(tmp_path / "C"), "--top-k", "5"]) == 0
    assert read_config_file(tmp_path / "B" / "config.yaml")["steps"] == 2
    assert len(LearnedPrompt.load(tmp_path / "B").curve) == 2
    replayed = read_config_file(tmp_path / "C" / "config.yaml")
    assert replayed["top_k"] == 5 and replayed["prior_weight"] == 0.5 and replayed["steps"] == 4


def test_a_config_file_with_an_unknown_option_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("policy:\n  prior_wieght: 1\n")
    with pytest.raises(SystemExit):
        main(["train", "--config", str(tmp_path / "bad.yaml"), "--task", "sst-2", "--output", "x"])
    assert "unknown options ['prior_wieght']" in capsys.readouterr().err


def test_the_defaults_are_the_recipe_spelled_out_in_docs():
    parser = build_parser()
    long = parser.parse_args([
        "train", "--agent", "rlprompt", "--task", "sst-2", "--data-dir", "d", "--verbalizers", " negative", " positive",
        "--model", "smollm2-135m", "--prompt-length", "5", "--steps", "100", "--prompts-per-step", "8",
        "--examples-per-step", "16", "--lr", "1e-3", "--eval-every", "10", "--reward", "gap=1", "--prior-weight", "1",
        "--reward-range", "0", "1", "--shaped-range", "0", "20", "--action-space", "words+punctuation",
        "--no-repeat", "4", "--rescore-top", "5", "--rescore-samples", "10",
        "--condition", "Classify the sentiment of this movie review as positive or negative.", "--output", "o"])
    short = build_parser().parse_args(["train", "--recipe", "embedded-sst2", "--data-dir", "d", "--output", "o"])
    plain = build_parser().parse_args(["train", "--task", "sst-2", "--model", "smollm2-135m", "--steps", "100",
                                       "--data-dir", "d", "--output", "o"])
    assert RLPromptConfig.from_args(short) == RLPromptConfig.from_args(plain)
    # auto is the built-in task's description, which the long form spells out
    assert RLPromptConfig.from_args(short) == RLPromptConfig.from_args(long).replace(condition="auto")
    assert (short.task, short.steps) == ("sst-2", 100)
    paper = read_config_file(recipe_path("rlprompt-paper"))
    assert paper["model"] == "distilgpt2" and paper["prior_weight"] == 0 and paper["top_k"] == 256
    assert paper["rescore_samples"] == 0 and paper["balance_classes"] is False  # RLPrompt's: dev alone, plain mean
    with pytest.raises(ConfigError, match="no recipe 'nope'"):
        recipe_path("nope")


def test_experiment_scripts_read_config_files_too(tmp_path):
    from conftest import load_experiment

    (tmp_path / "sweep.yaml").write_text("steps: 7\nlr: 1e-3\nseeds: [4, 5]\narms: ['reward=gap=1']\n")
    script = load_experiment("sst2_ppl_sweep")
    args = script.parse_args(["--config", str(tmp_path / "sweep.yaml"), "--seeds", "9"])
    assert (args.steps, args.lr, args.seeds) == (7, 1e-3, [9])  # the file over the mode, the flag over the file
    assert args.arms[0]["acc"] == 1.0 and args.prompts_per_step == 8  # the rest from the quick mode


def test_a_null_in_a_config_file_turns_an_option_off(tmp_path):
    (tmp_path / "off.yaml").write_text("sql:\n  reward_range: null\n")
    args = build_parser().parse_args(["train", "--task", "sst-2", "--output", "o", "--config", str(tmp_path / "off.yaml")])
    config = RLPromptConfig.from_args(args)
    assert config.sql.reward_range is None and config.sql.lr == 1e-3  # unset --lr: the agent's own


def test_none_for_a_field_that_cannot_be_none_means_its_default():
    """From Python as from an unset shared flag (``--lr``): the agent's own default, not a None that fails later."""
    from rlprompt_interp.agents.rlprompt import RLPromptAgent

    config = RLPromptAgent(model="tiny-gpt2", lr=None, prompts_per_step=None).config.sql
    assert config.lr == 1e-3 and config.prompts_per_step == 8
    assert RLPromptAgent(model="tiny-gpt2", lr=5e-5).config.sql.lr == 5e-5


# a tiny run of each agent (tiny-gpt2, two steps); the flags that are not train's own are that agent's
TINY_RUNS = {
    "rlprompt": ["--prompts-per-step", "2", "--examples-per-step", "2", "--mlp-width", "16", "--eval-every", "1"],
    "soft-prompt": ["--batch-size", "2", "--eval-every", "1"],
    "pez": ["--batch-size", "2", "--eval-every", "1", "--ppl-weight", "0.1"],
    "wayward": ["--batch-size", "2", "--eval-every", "1", "--target-text", " good film"],
    "grpo": ["--prompts-per-step", "2", "--examples-per-step", "2", "--eval-every", "1"],
    "rloo": ["--prompts-per-step", "2", "--examples-per-step", "2", "--eval-every", "1", "--lora-rank", "4"],
}
SECTIONS = {"rlprompt": {"models", "policy", "sql", "reward", "dev"}, "soft-prompt": {"soft-prompt"}, "pez": {"pez"},
            "wayward": {"wayward"}, "grpo": {"models", "reward", "trl"}, "rloo": {"models", "reward", "trl"}}


def values_in(data) -> list:
    return [v for item in data.values() for v in values_in(item)] if isinstance(data, dict) else [data]


@pytest.mark.parametrize("agent", sorted(TINY_RUNS))
def test_each_agent_replays_its_written_config_exactly(agent, tmp_path, sst_files):
    args = ["train", "--agent", agent, "--task", "sst-2", "--data-dir", str(sst_files), "--model", "tiny-gpt2",
            "--prompt-length", "2", "--steps", "2", "--quiet", "--no-test-eval", *TINY_RUNS[agent]]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(args + ["--output", str(tmp_path / "A")]) == 0
    deprecated = [str(w.message) for w in caught if issubclass(w.category, (DeprecationWarning, FutureWarning))
                  and any(library in w.filename for library in ("transformers", "trl", "peft", "rlprompt_interp"))]
    assert not deprecated, deprecated  # nothing on the training path uses a deprecated API
    written = yaml.safe_load((tmp_path / "A" / "config.yaml").read_text())
    assert set(written) == {"task", "training", "environment"} | SECTIONS[agent]  # only what the agent reads
    recorded = {key: section for key, section in written.items() if key != "environment"}
    assert "auto" not in values_in(recorded) and recorded["training"]["agent"] == agent
    assert recorded["task"]["verbalizers"] == [" negative", " positive"]  # the task definition as it ran

    assert main(["train", "--config", str(tmp_path / "A" / "config.yaml"), "--output", str(tmp_path / "B")]) == 0
    first, again = LearnedPrompt.load(tmp_path / "A"), LearnedPrompt.load(tmp_path / "B")
    assert again.text == first.text and without_times(again.curve) == without_times(first.curve)
    assert read_config_file(tmp_path / "B" / "config.yaml") == read_config_file(tmp_path / "A" / "config.yaml") | {
        "output": str(tmp_path / "B")}


def test_a_replay_on_another_kind_of_machine_says_what_differs(tmp_path, sst_files, capsys, monkeypatch):
    args = ["train", "--agent", "soft-prompt", "--task", "sst-2", "--data-dir", str(sst_files), "--model", "tiny-gpt2",
            "--prompt-length", "2", "--steps", "1", "--quiet", "--no-test-eval", "--batch-size", "2"]
    assert main(args + ["--output", str(tmp_path / "A"), "--dtype", "bfloat16"]) == 0
    config = tmp_path / "A" / "config.yaml"
    written = yaml.safe_load(config.read_text())
    written["environment"]["computed_with"]["device"] = "cuda:0"  # as if written on a GPU machine
    config.write_text(yaml.safe_dump(written))
    capsys.readouterr()
    assert main(["train", "--config", str(config), "--output", str(tmp_path / "B")]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "another kind of machine" in line]
    assert len(warnings) == 1 and "device cuda:0 -> cpu" in warnings[0] and "bfloat16 is emulated" in warnings[0]
    assert read_config_file(tmp_path / "B" / "config.yaml")["dtype"] == "bfloat16"  # replayed as written


def test_one_default_changed_in_one_place_reaches_help_file_and_python(tmp_path, sst_files, monkeypatch):
    """A default lives in its config field alone: change it there and the flag, the written config and the
    Python API all follow."""
    from rlprompt_interp.agents.pez import PEZAgent, PEZConfig

    @dataclasses.dataclass
    class Changed(PEZConfig):
        ppl_weight: float = option(0.25, PEZConfig.__dataclass_fields__["ppl_weight"].metadata["help"], at_least=0)

    monkeypatch.setattr(PEZAgent, "config_class", Changed)
    assert re.search(r"--ppl-weight PPL_WEIGHT[^-]*\(default: 0\.25\)", train_parser("pez").format_help())
    assert PEZAgent().config.ppl_weight == 0.25
    assert main(["train", "--agent", "pez", "--task", "sst-2", "--data-dir", str(sst_files), "--model", "tiny-gpt2",
                 "--prompt-length", "2", "--steps", "1", "--quiet", "--no-test-eval", "--batch-size", "2",
                 "--output", str(tmp_path / "A")]) == 0
    assert yaml.safe_load((tmp_path / "A" / "config.yaml").read_text())["pez"]["ppl_weight"] == 0.25
    assert LearnedPrompt.load(tmp_path / "A").provenance["method"] == "pez-ppl"  # the run used it


def test_rlprompt_chooses_on_a_dev_subset_as_the_continuous_agents_do(sst_files):
    from rlprompt_interp.tasks import get_task

    task = get_task("sst-2", data_dir=str(sst_files))
    trainer = RLPromptAgent(model="tiny-gpt2", dev_limit=2, mlp_width=16, quiet=True).build(
        task, prompt_length=2, steps=1)
    assert sorted(trainer.dev_data["label"]) == [0, 1]  # a fixed subset, stratified by label
    assert RLPromptAgent(model="tiny-gpt2", mlp_width=16).build(task, prompt_length=2, steps=1).dev_data["label"] == [
        1, 0, 1, 0, 1, 0]


def test_an_older_run_config_replays_with_what_this_agent_reads(tmp_path, sst_files, capsys):
    """A config.yaml of an older version (a soft-prompt run that recorded the RL flags too, and the old
    --batch-size-train) replays with a warning for what it leaves out; a hand-written file's typo stays an error."""
    old = {"task": {"task": "sst-2", "data_dir": str(sst_files)},
           "training": {"agent": "soft-prompt", "prompt_length": 2, "steps": 1, "quiet": True, "test_eval": False,
                        "max_minutes": None},
           "models": {"model": "tiny-gpt2", "scorer": "auto", "dtype": "auto"},
           "continuous": {"batch_size_train": 3, "optimizer": "adamw"}, "policy": {"mlp_width": 2048},
           "environment": {"python": "3.11"}}
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(old))
    with pytest.warns(RLPromptWarning) as caught:
        assert main(["train", "--config", str(tmp_path / "old.yaml"), "--output", str(tmp_path / "A")]) == 0
    said = " ".join(str(w.message) for w in caught)
    assert "batch_size_train in" in said and "use batch_size" in said
    assert "left out: ['max_minutes', 'mlp_width', 'scorer']" in said
    assert read_config_file(tmp_path / "A" / "config.yaml")["batch_size"] == 3
    del old["environment"]
    (tmp_path / "hand.yaml").write_text(yaml.safe_dump(old))
    with pytest.raises(SystemExit):
        main(["train", "--config", str(tmp_path / "hand.yaml"), "--output", str(tmp_path / "B")])
    assert "unknown options ['max_minutes', 'mlp_width', 'scorer']" in capsys.readouterr().err
