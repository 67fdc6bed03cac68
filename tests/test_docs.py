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
SHELL_TOOLS = {"rlprompt-interp", "python", "torchrun", "accelerate", "make", "pip", "tensorboard"}


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

    def stop(parser, argv, modes):
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
        check_flags(command, words[2:], where)
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


def test_your_own_task_and_reward_runs_as_written(tmp_path):
    """The files README shows, the data they describe (a few rows), and README's command, from that folder."""
    blocks = {marker: code for marker, code in code_blocks(README, "json") + code_blocks(README, "python")
              + code_blocks(README, "bash") if marker}
    for marker, code in blocks.items():
        if marker.startswith("file: "):
            (tmp_path / marker[6:]).write_text(code)
    task = json.loads(blocks["file: task.json"])
    rows = [("a wonderful, warm film", 1), ("dull and far too long", 0), ("the best acting this year", 1),
            ("a boring mess", 0)]
    for file in task["files"].values():
        (tmp_path / file).write_text("".join(json.dumps({task["text_column"]: text, task["label_column"]: label}) + "\n"
                                             for text, label in rows))
    [command] = shell_commands(blocks["run"])
    assert command[0] == "rlprompt-interp" and command[command.index("--model") + 1] == "tiny-gpt2"
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "rlprompt_interp", *command[1:], "--quiet"], cwd=tmp_path,
                          capture_output=True, text=True, env=environment, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    scores = json.loads((tmp_path / "runs" / "mine" / "scores.json").read_text())
    assert 0 <= scores["test_accuracy"] <= 1
    assert "keywords/mean" in (tmp_path / "runs" / "mine" / "prompt.json").read_text()


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_code_fences_are_balanced(page):
    """An unclosed fence turns the rest of a page into code, and hides its snippets from the checks above."""
    fences = [line for line in page.read_text().splitlines() if line.lstrip().startswith("```")]
    assert len(fences) % 2 == 0, f"{page.name}: {len(fences)} fence lines"
    assert all(fence.strip() != "```" for fence in fences[::2]), f"{page.name}: a block without a language"
