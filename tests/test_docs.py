"""README and docs/ run as written: every command's flags exist in its parser (exactly: argparse would take a
renamed flag's old prefix silently), every snippet's imports and keyword arguments exist, every link stays inside
the repository, and README's "Your own task and reward" example runs, on the tiny model it names."""

import argparse
import ast
import importlib
import inspect
import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import cli_sub_commands, load_experiment

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(?:<!-- (?P<marker>[^>]*) -->\n)?(?P<indent>[ ]*)```(?P<lang>\w*)\n(?P<body>.*?)^(?P=indent)```",
                   re.S | re.M)
SHELL_TOOLS = {"rlprompt-interp", "python", "torchrun", "accelerate", "make", "pip", "tensorboard", "source"}


def code_blocks(page: Path, lang: str) -> list[tuple[str, str]]:
    """``(marker, code)`` of each fenced block in ``lang``; the marker is an HTML comment on the line before."""
    return [(match["marker"] or "", textwrap.dedent(match["body"]))
            for match in FENCE.finditer(page.read_text()) if match["lang"] == lang]


def shell_commands(code: str) -> list[list[str]]:
    """Each command of a shell block as words: continuation lines joined, comments dropped, ``NAME="..."``
    assignments expanded where ``$NAME`` is used."""
    variables, commands = {}, []
    for line in code.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if len(words) == 1 and re.fullmatch(r"[A-Z_]+=.*", words[0]):
            name, _, value = words[0].partition("=")
            variables[name] = shlex.split(value)
            continue
        expanded = [part for word in words for part in (variables[word[1:]] if word[1:] in variables else [word])]
        while expanded and re.fullmatch(r"[A-Z_]+=.*", expanded[0]):  # VAR=value before a command
            expanded.pop(0)
        if expanded:
            commands.append(expanded)
    return commands


def all_commands():
    return [pytest.param(page, words, id=f"{page.name}: {' '.join(words)[:70]}")
            for page in PAGES for _, code in code_blocks(page, "bash") for words in shell_commands(code)]


def check_flags(parser: argparse.ArgumentParser, argv: list[str], where: str) -> None:
    """Every ``--flag`` of ``argv`` is one of ``parser``'s own spellings (no abbreviation), then ``argv`` parses
    (unless it reads a ``--config`` file, which the docs name but do not ship)."""
    known = {flag for action in parser._actions for flag in action.option_strings}
    unknown = [word.split("=")[0] for word in argv if word.startswith("--") and word.split("=")[0] not in known]
    assert not unknown, f"{where}: no such flag {unknown} (see --help)"
    if "--config" not in argv:
        try:
            parser.parse_args(argv)
        except SystemExit as stop:
            pytest.fail(f"{where}: does not parse (exit {stop.code})")


def experiment_parser_of(script: str, argv: list[str], monkeypatch) -> argparse.ArgumentParser:
    """The parser ``experiments/<script>.py`` builds, caught as its ``parse_args`` makes it."""
    module = load_experiment(Path(script).stem)

    class Made(Exception):
        def __init__(self, parser):
            self.parser = parser

    def stop(parser, argv):
        raise Made(parser)

    monkeypatch.setattr(module, "parse_experiment_args", stop)
    with pytest.raises(Made) as made:
        module.parse_args(argv)
    return made.value.parser


@pytest.mark.parametrize("page, words", all_commands())
def test_every_command_exists_with_its_flags(page, words, monkeypatch, capsys):
    where = f"{page.relative_to(ROOT)}: {' '.join(words)}"
    tool = words[0]
    assert tool in SHELL_TOOLS, f"{where}: a command this test does not know how to check"
    if tool == "rlprompt-interp":
        command = cli_sub_commands().get(words[1])
        assert command is not None, f"{where}: no sub-command {words[1]!r}"
        if command.choose is not None:  # train: the parser of the agent the command names
            command = command.choose(words[2:])
        check_flags(command, words[2:], where)
    elif tool == "source":  # the virtual environment `make install` creates
        assert words[1:] == [".venv/bin/activate"] and re.search(r"^VENV \??= \.venv$", (ROOT / "Makefile").read_text(),
                                                                 re.M), where
    elif tool == "make":
        targets = re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M)
        assert set(words[1:]) - {arg for arg in words[1:] if "=" in arg} <= set(targets), where
    elif any(word.startswith("experiments/") for word in words):
        at = next(i for i, word in enumerate(words) if word.startswith("experiments/"))
        assert (ROOT / words[at]).is_file(), f"{where}: no script {words[at]}"
        argv = words[at + 1:]
        check_flags(experiment_parser_of(words[at], argv, monkeypatch), argv, where)


def python_blocks():
    return [pytest.param(page, code, id=f"{page.name}: {code.strip().splitlines()[0][:60]}")
            for page in PAGES for _, code in code_blocks(page, "python")]


@pytest.mark.parametrize("page, code", python_blocks())
def test_every_snippet_imports_what_exists_and_calls_with_real_keywords(page, code):
    """Imports resolve; a call to an imported function or class uses keywords it takes (a class that takes
    ``**options`` is built with the snippet's literal values: cheap, no model loads)."""
    tree = ast.parse(code)
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{page.name}: {node.module} has no {alias.name}"
                names[alias.asname or alias.name] = getattr(module, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                importlib.import_module(alias.name)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names):
            continue
        target = names[node.func.id]
        if not getattr(target, "__module__", "").startswith("rlprompt_interp"):
            continue
        keywords = {kw.arg: kw.value for kw in node.keywords if kw.arg}
        parameters = inspect.signature(target).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()) and inspect.isclass(target):
            target(**{name: ast.literal_eval(value) for name, value in keywords.items()})
        else:
            unknown = set(keywords) - set(parameters)
            assert not unknown, f"{page.name}: {node.func.id} takes no {sorted(unknown)}"


LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_links_stay_inside_the_repository(page):
    """setup.cfg makes README the package page's text, where a link outside the repository breaks."""
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://")):
            continue
        path = (page.parent / target).resolve()
        assert ROOT in path.parents and path.exists(), f"{page.name}: link to {target}"


def test_readme_is_a_map():
    lines = README.read_text().splitlines()
    assert len(lines) <= 300
    headings = [line[3:] for line in lines if line.startswith("## ")]
    assert headings[:4] == ["Contents", "Quick start: two commands", "Your own task and reward", "Evaluate a prompt"]
    anchors = set(re.findall(r"\]\(#([\w-]+)\)", README.read_text()))
    assert anchors == {re.sub(r"[^\w -]", "", heading).lower().replace(" ", "-") for heading in headings[1:]}


SAMPLE = ROOT / "docs" / "own-task"  # README's own task, shipped: its files and a few rows of data


def test_the_shipped_sample_holds_the_files_readme_shows():
    blocks = {marker[6:]: code for marker, code in code_blocks(README, "json") + code_blocks(README, "python")
              if marker.startswith("file: ")}
    assert blocks and all((SAMPLE / name).read_text() == code for name, code in blocks.items())
    task = json.loads(blocks["task.json"])
    for file in [*task["files"].values(), "reviews.jsonl"]:
        rows = [json.loads(line) for line in (SAMPLE / file).read_text().splitlines()]
        assert rows and all(task["text_column"] in row for row in rows)


def test_your_own_task_and_reward_runs_as_written(tmp_path):
    """README's commands on the shipped sample, from its folder: `train`, then `predict`, whose labels are the
    ones `eval` counts on the labelled test rows and the ones the Python call gives."""
    from rlprompt_interp.evaluation import evaluate_prompt
    from rlprompt_interp.models import load_lm
    from rlprompt_interp.prompts import LearnedPrompt
    from rlprompt_interp.tasks import task_from_json

    for file in SAMPLE.iterdir():
        (tmp_path / file.name).write_text(file.read_text())
    blocks = {marker: code for marker, code in code_blocks(README, "bash") if marker}
    [command] = shell_commands(blocks["run"])
    assert command[0] == "rlprompt-interp" and command[command.index("--model") + 1] == "tiny-gpt2"
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}

    def run(argv: list[str]) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "rlprompt_interp", *argv, "--quiet"], cwd=tmp_path,
                              capture_output=True, text=True, env=environment, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        return done

    run(command[1:])
    scores = json.loads((tmp_path / "runs" / "mine" / "scores.json").read_text())
    assert 0 <= scores["test_accuracy"] <= 1
    curve = json.loads((tmp_path / "runs" / "mine" / "prompt.json").read_text())["curve"]
    assert all({"keywords/score", "gap/score", "keywords/mean"} <= set(row) for row in curve)  # what trackers get

    [predict] = shell_commands(blocks["run: predict"])
    run(predict[1:])
    inputs = [json.loads(line)["review"] for line in (tmp_path / "reviews.jsonl").read_text().splitlines()]
    rows = [json.loads(line) for line in (tmp_path / "labels.jsonl").read_text().splitlines()]
    assert [row["review"] for row in rows] == inputs
    assert all(row["label"] in ("bad", "good") and sum(row["probabilities"].values()) == pytest.approx(1)
               for row in rows)
    prompt = LearnedPrompt.load(tmp_path / "runs" / "mine")
    assert [row["label"] for row in rows] == prompt.classify(inputs).labels

    run([*predict[1:predict.index("--input")], "--input", "test.jsonl", "--output", "test-labels.jsonl"])
    labelled = [json.loads(line)["label"] for line in (tmp_path / "test-labels.jsonl").read_text().splitlines()]
    lm = load_lm("tiny-gpt2", dtype="float32")
    report = evaluate_prompt(task_from_json(tmp_path / "task.json"), lm, prompt, progress=False)
    assert labelled == [("bad", "good")[index] for index in report.predicted]
    assert report.accuracy == pytest.approx(scores["test_accuracy"])


# ------------------------------------------------------------------ the defaults docs/ states, against the parsers

FLAG = r"`(--[a-z][\w-]*)(?: ([^`]*))?`"
DEFAULT_CLAIMS = [  # the ways a page says what a flag's default is (prose with its line breaks joined)
    re.compile(FLAG + r"[^`.;]{0,80}?\((?:the )?default:? `?([^`),;: ]+)`?"),  # `--flag K` ... (default 5)
    re.compile(r"`(--[a-z][\w-]*) ([^`]+)` \(the default()"),  # `--ppl-form perplexity` (the default, ...)
    re.compile(r"\b(?:[Tt]he default|defaults? to) `(--[a-z][\w-]*) ([^`]+)`()"),  # the default `--shaped-range 0 20`
    re.compile(FLAG + r"[^`.]{0,40}?by default `([^`]+)`"),  # `--condition`; by default `auto`
    re.compile(r"\(" + FLAG + r", default `([^`]+)`"),  # (`--scorer`, default `prompt`
]
LIST_ITEM = re.compile(r"^\s*- " + FLAG + r"(.*?)(?=^\s*- |\Z)", re.S | re.M)  # - `--prior-weight BETA`: ... Default 1
TABLE_ROW = re.compile(r"^\| ([^|]*`--[^|]*) \|", re.M)  # | `--lora-rank 16`, `--lora-alpha 32` | the adapter |
CODE = re.compile(r"^[ ]*```\w*\n.*?^[ ]*```", re.S | re.M)


def stated_defaults(page: Path) -> list[tuple[str, str]]:
    """``(flag, value)`` for every default the page states in prose, in a list item or in a table of flags."""
    prose = CODE.sub("", page.read_text())
    joined = re.sub(r"\s*\n\s*", " ", prose)
    claims = [(m.group(1), m.group(3) or m.group(2)) for pattern in DEFAULT_CLAIMS for m in pattern.finditer(joined)]
    for item in LIST_ITEM.finditer(prose):
        said = re.search(r"\bDefault `?([^`\s;,.)]+)", item.group(3))
        if said:
            claims.append((item.group(1), said.group(1)))
    for row in TABLE_ROW.finditer(prose):
        claims += [(flag, value) for flag, value in re.findall(r"`(--[a-z][\w-]*) ([^`]+)`", row.group(1))
                   if not re.fullmatch(r"[A-Z_ .]+|\{.*\}", value)]  # a metavar or the choices: not a value
    return claims


def same_value(default, stated: str) -> bool:
    stated = stated.strip("'\"")
    if isinstance(default, (list, tuple)):
        return [str(item) for item in default] == stated.split() or _numbers(default) == _numbers(stated.split())
    if default is None or isinstance(default, bool):
        return stated.lower() == str(default).lower()
    if isinstance(default, (int, float)):
        return _numbers([default]) == _numbers([stated])
    return str(default) == stated


def _numbers(values) -> list[float] | None:
    try:
        return [float(value) for value in values]
    except (TypeError, ValueError):
        return None


def parser_defaults(flag: str) -> dict[str, object]:
    """``{sub-command: default}`` of ``flag`` in every sub-command that has it (``train``: each agent's parser)."""
    from rlprompt_interp.agents import AGENTS

    found = {}
    for name, command in cli_sub_commands().items():
        parsers = ({f"{name} --agent {agent}": command.choose(["--agent", agent]) for agent in AGENTS}
                   if command.choose is not None else {name: command})
        for parser_name, parser in parsers.items():
            for action in parser._actions:
                if flag in action.option_strings:
                    found[parser_name] = action.default
    return found


def default_claims():
    return [pytest.param(page, flag, value, id=f"{page.name}: {flag} {value}")
            for page in PAGES for flag, value in stated_defaults(page)]


def test_the_docs_state_defaults_the_checks_below_find():
    """The patterns above find what the pages say (a rewording that hides a default from them fails here)."""
    claims = {(page.name, flag) for page, flag, _ in (param.values for param in default_claims())}
    assert {("training.md", "--rescore-top"), ("training.md", "--shaped-range"), ("training.md", "--prior-weight"),
            ("agents.md", "--temperature"), ("agents.md", "--lora-rank"), ("agents.md", "--condition"),
            ("metrics.md", "--scorer"), ("models.md", "--dtype"), ("README.md", "--reward")} <= claims


@pytest.mark.parametrize("page, flag, value", default_claims())
def test_every_default_the_docs_state_is_the_parser_s(page, flag, value):
    defaults = parser_defaults(flag)
    assert defaults, f"{page.name} states a default of {flag}, which no sub-command has"
    assert any(same_value(default, value) for default in defaults.values()), \
        f"{page.name} says {flag} defaults to {value!r}; the parsers say {defaults}"


def spelled_out_commands():
    """Blocks marked ``<!-- defaults except FLAG ... -->``: a `train` command whose flags, but the listed ones,
    spell out the defaults."""
    return [pytest.param(page, marker.split()[2:], words, id=f"{page.name}: {' '.join(words)[:60]}")
            for page in PAGES for marker, code in code_blocks(page, "bash") if marker.startswith("defaults except")
            for words in shell_commands(code)]


@pytest.mark.parametrize("page, kept, words", spelled_out_commands())
def test_a_command_that_spells_out_the_defaults_changes_nothing(page, kept, words):
    """The command as written and the command with only the ``kept`` flags give the same configuration."""
    from rlprompt_interp.agents import agent_class
    from rlprompt_interp.cli.train import TrainArguments
    from rlprompt_interp.config import config_from_args

    assert words[:2] == ["rlprompt-interp", "train"]
    parser = cli_sub_commands()["train"]
    argv = words[2:]
    starts = [i for i, word in enumerate(argv) if word.startswith("--")] + [len(argv)]
    minimal = [word for start, end in zip(starts, starts[1:]) if argv[start] in kept for word in argv[start:end]]

    def configuration(arguments):
        args = parser.parse_args(arguments)
        config = agent_class(args.agent).config_class.from_args(args)
        return {**config.to_dict(), "train": config_from_args(TrainArguments, args).to_dict()}

    written, defaults = configuration(argv), configuration(minimal)
    differ = {(section, key): (value, defaults[section][key]) for section, values in written.items()
              for key, value in values.items() if value != defaults[section][key]}
    assert not differ, f"{page.name}: flags that are not the defaults (written, default): {differ}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_code_fences_are_balanced(page):
    """An unclosed fence turns the rest of a page into code, and hides its snippets from the checks above."""
    fences = [line for line in page.read_text().splitlines() if line.lstrip().startswith("```")]
    assert len(fences) % 2 == 0, f"{page.name}: {len(fences)} fence lines"
    assert all(fence.strip() != "```" for fence in fences[::2]), f"{page.name}: a block without a language"
