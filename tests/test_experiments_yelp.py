"""experiments/yelp_style_ppl_sweep.py end to end on tiny models: the files it writes, and resume after a kill."""

import json

import pytest

from conftest import empty_folder, load_experiment, result_times, run_until_killed
from rlprompt_interp.prompts import LearnedPrompt
from rlprompt_interp.style.classifier import train_style_classifier
from test_style_task import NEGATIVE, POSITIVE


def write_yelp_layout(folder):
    """Yelp's file names with enough sentences for its 100-sentence dev split."""
    folder.mkdir(parents=True)
    for style, lines in ((0, NEGATIVE), (1, POSITIVE)):
        many = [f"{line} {i}" for i in range(20) for line in lines]
        (folder / f"sentiment.dev.{style}.txt").write_text("\n".join(many) + "\n")
        (folder / f"sentiment.test.{style}.txt").write_text("\n".join(lines[:3]) + "\n")
        other = POSITIVE if style == 0 else NEGATIVE
        (folder / f"sentiment.ref.{style}.txt").write_text("\n".join(other[:3]) + "\n")
    return folder


@pytest.fixture
def tiny_args(tmp_path):
    corpus = write_yelp_layout(tmp_path / "yelp-style")
    classifier = train_style_classifier([NEGATIVE, POSITIVE], styles=["negative", "positive"], epochs=20, lr=0.05,
                                        heldout_fraction=0.0, cache=False, log=lambda *_: None)
    folder = classifier.save(tmp_path / "style-classifier")
    return ["--policy", "tiny-gpt2", "--task-model", "tiny-gpt2", "--scorer", "tiny-gpt2", "--steps", "2",
            "--eval-every", "1", "--prompts-per-step", "2", "--examples-per-step", "2", "--num-samples", "2",
            "--bootstraps", "1", "--dev-inputs", "2", "--eval-limit", "2", "--fluent-top-k", "5",
            "--alphas", "0", "1", "--directions", "0_to_1", "--data-dir", str(corpus),
            "--style-classifier", str(folder), "--output", str(tmp_path / "sweep")]


@pytest.mark.usefixtures("single_thread")
def test_sweep_writes_table_json_plot_and_resumes_a_killed_cell(tiny_args, tmp_path, monkeypatch, capsys):
    from rlprompt_interp.algorithms.trainer import SQLTrainer

    script = load_experiment("yelp_style_ppl_sweep")
    output = tmp_path / "sweep"
    assert script.main(tiny_args) == 0

    rows = json.loads((output / "results.json").read_text())["rows"]
    assert [(row["direction"], row["alpha"]) for row in rows] == [("0_to_1", None), ("0_to_1", 0.0), ("0_to_1", 1.0)]
    assert rows[0]["prompt"] == "" and rows[0]["prompt_perplexity"] is None
    for row in rows:
        assert row["examples"] == 2 and 0 <= row["style_accuracy"] <= 1 and 0 <= row["content"] <= 1
    for alpha in ("0", "1"):
        cell = output / "cells" / f"direction=0_to_1,alpha={alpha}"
        row = json.loads((cell / "result.json").read_text())
        assert LearnedPrompt.load(cell / "train").text == row["prompt"] and row["prompt_perplexity"] > 1
        assert (cell / "test.outputs.tsv").is_file()
    assert "| 0_to_1 | no prompt | '' | - |" in (output / "results.md").read_text()
    assert (output / "yelp_style_ppl_sweep.png").stat().st_size > 1000

    # Kill the alpha = 1 cell after one of its two steps: it keeps a step-1 checkpoint and no result.
    killed = output / "cells" / "direction=0_to_1,alpha=1"
    finished = result_times(output, skip=killed)
    empty_folder(killed)
    train = SQLTrainer.train

    def killed_after_one_step(self, **kwargs):
        train(self, stop_after=1, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(SQLTrainer, "train", killed_after_one_step)
    run_until_killed(script.main, tiny_args, killed)

    monkeypatch.setattr(SQLTrainer, "train", train)
    capsys.readouterr()
    assert script.main(tiny_args) == 0
    log = capsys.readouterr().out
    assert "at step 1" in log  # the killed cell resumed from its checkpoint, not from step 0
    assert log.count(": done, read back") == 2  # the baseline and alpha = 0 were not evaluated again
    assert result_times(output, skip=killed) == finished


def test_changed_settings_in_the_same_folder_are_refused(tiny_args):
    from rlprompt_interp.sweeps import SweepConfigError

    script = load_experiment("yelp_style_ppl_sweep")
    assert script.main(tiny_args + ["--alphas", "0"]) == 0
    with pytest.raises(SweepConfigError, match="steps"):
        script.main(tiny_args + ["--alphas", "0", "--steps", "3"])
