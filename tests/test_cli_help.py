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


def test_train_help_shows_the_chosen_agents_options_with_its_defaults():
    train = cli_sub_commands()["train"]
    assert "--no-test-eval        (on unless this flag is given)" in train.format_help()
    helps = {agent: {action.option_strings[0]: action.help for action in options(train.choose(["--agent", agent]))}
             for agent in ("rlprompt", "pez", "grpo")}
    assert "Adam's learning rate of the MLP" in helps["rlprompt"]["--lr"]
    assert "--lr-scale" in helps["pez"]["--lr"] and "--ppl-weight" not in helps["rlprompt"]
    assert "1e-4" in helps["grpo"]["--lr"] and "--mlp-width" not in helps["grpo"]
    formatter = train._get_formatter()
    prompts = {agent: formatter._get_help_string(action) for agent in ("rlprompt", "grpo")
               for action in options(train.choose(["--agent", agent])) if action.dest == "prompts_per_step"}
    assert prompts["rlprompt"].endswith("(default: 8)") and prompts["grpo"].endswith("(default: 8)")
