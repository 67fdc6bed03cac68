"""A learned prompt is scored with the template and verbalizers it was trained with, unless the user says otherwise."""

import json

import pytest

from rlprompt_interp.cli import main
from rlprompt_interp.notices import RLPromptWarning
from rlprompt_interp.tasks import get_task
from rlprompt_interp.tasks.recorded import use_recorded_definition

pytestmark = pytest.mark.usefixtures("single_thread")

RECORDED = {"task": "sst-2", "template": "Review: {sentence} Sentiment:{prompt}", "verbalizers": [" bad", " good"]}


def test_recorded_given_and_builtin_definitions(sst_files):
    task = get_task("sst-2", data_dir=str(sst_files))
    used, definition = use_recorded_definition(task, RECORDED)
    assert used.template.text == RECORDED["template"] and list(used.verbalizers) == [" bad", " good"]
    assert definition["template_from"] == definition["verbalizers_from"] == "recorded with the prompt"

    given = get_task("sst-2", data_dir=str(sst_files), verbalizers=[" terrible", " great"])
    with pytest.warns(RLPromptWarning, match=r"--verbalizers \[' terrible', ' great'\] differs .*\[' bad', ' good'\]"):
        used, definition = use_recorded_definition(given, RECORDED, verbalizers=[" terrible", " great"])
    assert list(used.verbalizers) == [" terrible", " great"] and used.template.text == RECORDED["template"]
    assert definition["verbalizers_from"] == "given (--verbalizers)"

    other = get_task("subj")  # a prompt moved to another task is scored with that task's own definition
    used, definition = use_recorded_definition(other, RECORDED)
    assert used.verbalizers == other.verbalizers and "learned on sst-2" in definition["verbalizers_from"]


def test_eval_of_a_learned_prompt_scores_as_its_own_training_run(sst_files, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--agent", "rlprompt", "--task", "sst-2", "--data-dir", str(sst_files), "--model",
                 "tiny-gpt2", "--verbalizers", " negative", " positive", "--template", "Review: {sentence} It was{prompt}",
                 "--prompt-length", "2", "--steps", "2", "--prompts-per-step", "2", "--examples-per-step", "2",
                 "--eval-every", "2", "--mlp-width", "32", "--quiet", "--output", str(run)]) == 0
    trained = json.loads((run / "scores.json").read_text())["test_accuracy"]
    capsys.readouterr()

    out = tmp_path / "report.json"
    assert main(["eval", "--task", "sst-2", "--data-dir", str(sst_files), "--learned", str(run), "--quiet",
                 "--no-perplexity", "--no-faithfulness", "--output", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["accuracy"] == trained
    assert report["extra"]["task_definition"] == {
        "template": "Review: {sentence} It was{prompt}", "template_from": "recorded with the prompt",
        "verbalizers": [" negative", " positive"], "verbalizers_from": "recorded with the prompt"}
    assert "task sst-2: template 'Review: {sentence} It was{prompt}' (recorded with the prompt)" in capsys.readouterr().out

    assert main(["eval", "--task", "sst-2", "--data-dir", str(sst_files), "--learned", str(run), "--quiet",
                 "--no-perplexity", "--no-faithfulness", "--verbalizers", " terrible", " great"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("rlprompt-interp: warning: --verbalizers [' terrible', ' great'] differs from the "
                          "verbalizers the prompt was trained with ([' negative', ' positive']")
