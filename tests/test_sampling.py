"""Seeded subsets: ``--limit`` is a stratified random draw, few-shot draws take K per class."""

import json
from collections import Counter

import pytest

from rlprompt_interp.cli import main
from rlprompt_interp.notices import RLPromptWarning
from rlprompt_interp.tasks import TaskDataError, get_task, task_from_files
from rlprompt_interp.tasks.sampling import per_class_indices, random_indices, stratified_indices

SORTED = [0] * 600 + [1] * 300 + [2] * 100  # a file sorted by label, classes of unequal size


def test_stratified_subset_keeps_each_class_share_and_the_file_order():
    rows = stratified_indices(SORTED, 100, seed=0)
    assert Counter(SORTED[i] for i in rows) == {0: 60, 1: 30, 2: 10}
    assert rows == sorted(rows) and len(set(rows)) == 100
    assert rows == stratified_indices(SORTED, 100, seed=0) != stratified_indices(SORTED, 100, seed=1)
    assert stratified_indices(SORTED, 5000) == list(range(1000))
    odd = stratified_indices([0, 0, 1, 1, 1], 3, seed=0)  # 1.2 and 1.8: the larger remainder rounds up
    assert Counter([0, 0, 1, 1, 1][i] for i in odd) == {0: 1, 1: 2}


def test_random_and_per_class_draws():
    assert random_indices(10, 4, seed=3) == random_indices(10, 4, seed=3) and len(random_indices(10, 4)) == 4
    train = per_class_indices(SORTED, 16, seed=42)
    assert Counter(SORTED[i] for i in train) == {0: 16, 1: 16, 2: 16}
    dev = per_class_indices(SORTED, 16, seed=42, exclude=train)
    assert not set(train) & set(dev) and Counter(SORTED[i] for i in dev) == {0: 16, 1: 16, 2: 16}
    assert per_class_indices([0, 0, 1], 2, seed=0) == [0, 1, 2]  # a small class gives what it has


@pytest.fixture
def label_sorted_file(tmp_path):
    """Two classes, sorted by label, every sentence the same: any model answers one class for all of them."""
    path = tmp_path / "sorted.tsv"
    path.write_text("sentence\tlabel\n" + "".join(f"a film\t{label}\n" for label in [0] * 500 + [1] * 500))
    return path


def test_eval_limit_on_a_label_sorted_file_is_fair(label_sorted_file, tmp_path, capsys):
    out = tmp_path / "report.json"
    assert main(["eval", "--task", "sorted", "--model", "tiny-gpt2", "--data-files", f"test={label_sorted_file}",
                 "--verbalizers", " terrible", " great", "--prompt", "", "--limit", "300", "--no-perplexity",
                 "--quiet", "--output", str(out)]) == 0
    report = json.loads(out.read_text())
    assert max(report["predicted_fraction"].values()) == 1.0  # the model answers one class ...
    assert 0.35 <= report["accuracy"] <= 0.65  # ... and scores about half, not 0 or 1 (the first 300 rows)
    assert report["num_examples"] == 300
    assert report["subset"] == "a random 300 of the 1000 test examples, stratified by label (seed 0)"
    assert "examples: a random 300 of the 1000 test examples" in capsys.readouterr().out


def test_a_one_class_subset_is_named_in_a_warning(label_sorted_file, capsys):
    assert main(["eval", "--task", "sorted", "--model", "tiny-gpt2", "--data-files", f"test={label_sorted_file}",
                 "--verbalizers", " terrible", " great", "--limit", "1", "--no-perplexity", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("rlprompt-interp: warning: a random 1 of the 1000 test examples") and "single class" in err
    task = task_from_files("sorted", {"test": label_sorted_file}, template="{sentence} {prompt}",
                           verbalizers=[" terrible", " great"])
    with pytest.warns(RLPromptWarning, match="single class"):
        task.load_split("test", limit=1)


def test_limit_below_one_is_a_clear_error(sst_files, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["eval", "--task", "sst-2", "--model", "tiny-gpt2", "--data-dir", str(sst_files), "--limit", "0"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.startswith("rlprompt-interp: error: argument --limit: must be at least 1, got 0")
    task = get_task("sst-2", data_dir=str(sst_files))
    with pytest.raises(TaskDataError, match="--limit must be at least 1"):
        task.load_split("test", limit=0)
    assert len(task.load_split("test", limit=4)) == 4
