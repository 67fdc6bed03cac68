"""`--help` tells the truth: every option of every sub-command has a help text, shows its default once (none for
a switch or an unset value), and says which agents read it where not every agent does."""

import argparse

import pytest

from conftest import cli_sub_commands


def options(command: argparse.ArgumentParser):
    return [action for action in command._actions
            if action.option_strings and action.help != argparse.SUPPRESS and action.dest != "help"]


@pytest.mark.parametrize("name", sorted(cli_sub_commands()))
def test_every_option_has_help_and_one_true_default(name):
    command = cli_sub_commands()[name]
    formatter = command._get_formatter()
    for action in options(command):
        flag = action.option_strings[0]
        assert action.help, f"{name} {flag} has no help text"
        shown = formatter._get_help_string(action)
        assert shown.count("default") <= 1, f"{name} {flag}: {shown}"
        for wrong in ("(default: None)", "(default: True)", "(default: False)", "(default: [])"):
            assert wrong not in shown, f"{name} {flag}: {shown}"


def test_train_help_names_the_agents_that_read_each_flag():
    train = cli_sub_commands()["train"]
    text = train.format_help()
    assert "--no-test-eval        (on unless this flag is given)" in text
    helps = {action.option_strings[0]: action.help for action in options(train)}
    for flag in ("--prompts-per-step", "--examples-per-step", "--condition", "--policy-model", "--checkpoint-every",
                 "--select-by", "--max-minutes"):
        assert helps[flag].startswith("(rlprompt, grpo, rloo)"), flag
    for agent, default in (("rlprompt", "1e-3"), ("grpo, rloo", "1e-4"), ("--lr-scale", "")):
        assert agent in helps["--lr"] and default in helps["--lr"]
