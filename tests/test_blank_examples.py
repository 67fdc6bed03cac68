"""Examples with empty or white-space-only text are left out at load time, with a warning naming them,
so RL training, evaluation and the continuous agents all see the same examples."""

import json

import pytest

from rlprompt_interp.cli import main
from rlprompt_interp.notices import RLPromptWarning
from rlprompt_interp.tasks import TaskDataError, get_task

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture
def blank_files(sst_files):
    """The tiny SST-2 task with a white-space-only example (row 2) and an empty one (row 5) in every split."""
    rows = [("the movie was great fun", 1), (" ", 0), ("really good acting", 1), ("the worst plot", 0), ("", 1),
            ("sad and boring", 0)]
    text = "sentence\tlabel\n" + "".join(f"{s}\t{l}\n" for s, l in rows)
    for path in ("sst-2/16-42/train.tsv", "sst-2/16-42/dev.tsv", "sst-2/test.tsv"):
        (sst_files / path).write_text(text)
    return sst_files


def test_blank_examples_are_left_out_with_a_warning_naming_file_and_rows(blank_files):
    task = get_task("sst-2", data_dir=str(blank_files))
    with pytest.warns(RLPromptWarning, match=r"train\.tsv: left out 2 example\(s\) whose 'sentence' text is empty "
                                             r"or white space only \(example 2, 5,"):
        train = task.load_split("train")
    assert train["sentence"] == ["the movie was great fun", "really good acting", "the worst plot", "sad and boring"]
    assert train["label"] == [1, 1, 0, 0]


def test_a_file_of_blank_examples_is_an_error(tmp_path):
    from rlprompt_interp.tasks import task_from_files

    (tmp_path / "t.tsv").write_text("sentence\tlabel\n \t0\n\t1\n")
    task = task_from_files("t", {"test": tmp_path / "t.tsv"}, template="{sentence} {prompt}",
                           verbalizers=[" bad", " good"])
    with pytest.raises(TaskDataError, match="every example has an empty 'sentence' text"):
        task.load_split("test")


@pytest.mark.parametrize("agent, flags", [
    ("rlprompt", ["--prompts-per-step", "2", "--examples-per-step", "4", "--mlp-width", "32"]),
    ("soft-prompt", ["--batch-size", "4"]),
])
def test_training_and_evaluation_run_on_a_file_with_blank_examples(blank_files, tmp_path, capsys, agent, flags):
    out = tmp_path / agent
    assert main(["train", "--agent", agent, "--task", "sst-2", "--data-dir", str(blank_files), "--model",
                 "tiny-gpt2", "--prompt-length", "2", "--steps", "2", "--eval-every", "1", "--quiet", *flags,
                 "--output", str(out)]) == 0
    err = capsys.readouterr().err
    assert "train.tsv: left out 2 example(s)" in err and "test.tsv: left out 2 example(s)" in err
    assert main(["eval", "--task", "sst-2", "--data-dir", str(blank_files), "--learned", str(out), "--quiet",
                 "--no-perplexity", "--output", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["num_examples"] == 4
