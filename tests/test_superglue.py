"""BoolQ: FewGLUE's one file split three ways, hub-free, and answered by T5 at the first decoder step."""

import json

import pytest

from conftest import SHARED_DATA
from rlprompt_interp.evaluation import evaluate_prompt
from rlprompt_interp.models import load_lm
from rlprompt_interp.tasks import TaskDataError, get_task, list_tasks


def write_boolq(folder, n=32):
    rows = [{"passage": f"passage number {i} is good", "question": f"is {i} good", "idx": i, "label": i % 3 == 0}
            for i in range(n)]
    (folder / "BoolQ").mkdir(parents=True)
    (folder / "BoolQ" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_fewglue_is_split_deterministically(tmp_path):
    task = get_task("boolq", data_dir=str(write_boolq(tmp_path)))
    assert "boolq" in list_tasks()
    splits = {name: task.load_split(name) for name in ("train", "dev", "test")}
    assert [len(s) for s in splits.values()] == [16, 8, 8]
    passages = [set(s["passage"]) for s in splits.values()]
    assert not (passages[0] & passages[1] or passages[0] & passages[2] or passages[1] & passages[2])
    assert set.union(*passages) == {f"passage number {i} is good" for i in range(32)}
    again = get_task("boolq", data_dir=str(tmp_path / "BoolQ")).load_split("dev")  # the task folder works too
    assert again["passage"] == splits["dev"]["passage"]
    train = splits["train"]
    assert all(label == (int(p.split()[2]) % 3 == 0) for p, label in zip(train["passage"], train["label"]))
    assert splits["train"].features["label"].dtype == "int64"


def test_boolq_template_and_verbalizers(tmp_path):
    task = get_task("boolq", data_dir=str(write_boolq(tmp_path)))
    example = task.load_split("train")[0]
    assert task.format(example, "PROMPT") == f"PROMPT {example['passage']} Question: {example['question']}? Answer:"
    assert task.verbalizers == (" no", " yes") and task.label_names == ("false", "true")
    for spec in ("tiny-t5", "tiny-gpt2"):
        assert len(task.verbalizer_ids(load_lm(spec).tokenizer)) == 2


def test_boolq_evaluates_with_t5(tmp_path):
    task = get_task("boolq", data_dir=str(write_boolq(tmp_path)))
    report = evaluate_prompt(task, load_lm("tiny-t5"), "Answer yes or no.", split="test", progress=False)
    assert report.num_examples == 8 and sum(report.predicted_fraction.values()) == pytest.approx(1.0)


def test_missing_fewglue_names_the_layout(tmp_path):
    with pytest.raises(TaskDataError, match="FewGLUE's layout"):
        get_task("boolq", data_dir=str(tmp_path)).load_split("train")


@pytest.mark.skipif(not (SHARED_DATA / "fewglue" / "BoolQ").is_dir(), reason="shared FewGLUE data is absent")
def test_shared_fewglue_boolq():
    task = get_task("boolq", data_dir=str(SHARED_DATA / "fewglue"))
    assert [len(task.load_split(s)) for s in ("train", "dev", "test")] == [16, 8, 8]
