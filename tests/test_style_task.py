"""Style-transfer tasks: the Yelp layout, a user's own corpus, directions, references, clear errors."""

from pathlib import Path

import pytest

from rlprompt_interp.tasks import TaskDataError
from rlprompt_interp.tasks.style_transfer import (get_style_task, is_style_task, parse_direction,
                                                  style_task_from_files, style_task_from_folder)

YELP = Path(__file__).resolve().parents[2] / "shared" / "data" / "yelp-style"

NEGATIVE = ["the food was cold", "awful service", "never again", "rude staff", "too salty", "dirty tables"]
POSITIVE = ["the food was warm", "lovely service", "will come again", "friendly staff", "great taste", "clean tables"]


def write_corpus(folder: Path, prefix: str = "reviews", refs: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for style, lines in ((0, NEGATIVE), (1, POSITIVE)):
        (folder / f"{prefix}.dev.{style}.txt").write_text("\n".join(lines) + "\n\n")  # a trailing blank line
        (folder / f"{prefix}.test.{style}.txt").write_text("\n".join(lines[:3]) + "\n")
        if refs:
            other = POSITIVE if style == 0 else NEGATIVE
            (folder / f"{prefix}.ref.{style}.txt").write_text("\n".join(other[:3]) + "\n")
    return folder


@pytest.fixture
def corpus(tmp_path):
    return write_corpus(tmp_path / "corpus")


def test_user_corpus_splits_and_references(corpus):
    task = style_task_from_folder(corpus, direction="0_to_1", dev_size=2)
    assert task.name == "reviews" and task.source_style == 0 and task.target_style == 1
    train, dev, test = task.load_split("train"), task.load_split("dev"), task.load_split("test")
    assert train["input"] == NEGATIVE[:4] and dev["input"] == NEGATIVE[4:]  # blank line dropped, last 2 held out
    assert test["input"] == NEGATIVE[:3] and test["references"] == [[p] for p in POSITIVE[:3]]
    assert set(test["target_style"]) == {1} and set(test["source_style"]) == {0}
    limited = task.load_split("test", limit=2)  # a seeded random 2 of the 3, references kept with their inputs
    rows = [NEGATIVE.index(text) for text in limited["input"]]
    assert len(rows) == 2 and rows == sorted(rows) and limited["references"] == [[POSITIVE[i]] for i in rows]
    assert limited["input"] == task.load_split("test", limit=2)["input"]
    assert task.subset_note("test", 2) == "a random 2 of the 3 test examples (seed 0)"
    assert task.lowercase
    assert task.format("the food was cold", "Make it nice") == 'Make it nice "the food was cold" "'
    back = task.with_direction("1_to_0")
    assert back.load_split("test")["input"] == POSITIVE[:3] and back.target_style_name == "style 0"
    assert task.style_texts("train") == [NEGATIVE, POSITIVE]


def test_corpus_without_references_and_explicit_files(tmp_path):
    folder = write_corpus(tmp_path / "c", prefix="formal", refs=False)
    task = style_task_from_folder(folder, direction="1_to_0", style_names=["informal", "formal"])
    assert task.load_split("test")["references"] == [[], [], []]
    files = {"train": [folder / "formal.dev.0.txt", folder / "formal.dev.1.txt"],
             "test": {0: folder / "formal.test.0.txt", 1: folder / "formal.test.1.txt"}}
    same = style_task_from_files("mine", files, direction="1_to_0", dev_size=1)
    assert same.load_split("test")["input"] == POSITIVE[:3]


def test_clear_errors(corpus, tmp_path):
    with pytest.raises(TaskDataError, match="direction"):
        parse_direction("0-to-1")
    with pytest.raises(TaskDataError, match="direction"):
        style_task_from_folder(corpus, direction="1_to_1")
    with pytest.raises(TaskDataError, match="does not exist"):
        style_task_from_folder(tmp_path / "nowhere")
    (corpus / "reviews.ref.0.txt").write_text("only one line\n")
    with pytest.raises(TaskDataError, match="line i must rewrite test line i"):
        style_task_from_folder(corpus).load_split("test")
    (corpus / "reviews.test.1.txt").unlink()
    with pytest.raises(TaskDataError, match="reviews.test.1.txt is missing"):
        style_task_from_folder(corpus)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TaskDataError, match="found no"):
        style_task_from_folder(empty)
    with pytest.raises(TaskDataError, match="pass --data-dir"):
        get_style_task("yelp-style", data_dir=empty)
    with pytest.raises(TaskDataError, match="names direction"):
        get_style_task("yelp-style:0_to_1", data_dir=empty, direction="1_to_0")


def test_task_names():
    assert is_style_task("yelp-style") and is_style_task("yelp-style:1_to_0")
    assert not is_style_task("sst-2") and not is_style_task(None)


@pytest.mark.skipif(not YELP.is_dir(), reason=f"shared data folder {YELP} is absent")
def test_yelp_from_shared_data():
    task = get_style_task("yelp-style:1_to_0", data_dir=YELP.parent)
    test = task.load_split("test")
    assert len(test) == 500 and task.style_names == ("negative", "positive") and task.target_style == 0
    assert test["references"][0][0] != test["input"][0] and len(test["references"]) == 500
    assert len(task.load_split("dev")) == 100 and task.lowercase
