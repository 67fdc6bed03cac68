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


# --------------------------------------------------------------------------- CB, RTE, COPA, WSC


def write_fewglue_tasks(folder, n=32):
    """FewGLUE-shaped CB (string labels), COPA (int labels) and WSC (spans nested under ``target``)."""
    cb_labels = ["entailment", "contradiction", "neutral"]
    rows = {
        "CB": [{"premise": f"premise {i}", "hypothesis": f"hypothesis {i}", "label": cb_labels[i % 3], "idx": i}
               for i in range(n)],
        "COPA": [{"premise": f"premise {i}.", "choice1": f"first {i}.", "choice2": f"second {i}.",
                  "question": "cause" if i % 2 else "effect", "label": i % 2, "idx": i} for i in range(n)],
        "WSC": [{"text": f"sentence {i} where it happens", "idx": i, "label": i % 4 == 0,
                 "target": {"span1_text": f"thing {i}", "span2_text": "it", "span1_index": 0, "span2_index": 3}}
                for i in range(n)],
    }
    for name, items in rows.items():
        (folder / name).mkdir(parents=True)
        (folder / name / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))
    return folder


def test_superglue_tasks_are_registered():
    assert {"cb", "rte", "copa", "wsc"} <= set(list_tasks())
    assert get_task("cb").label_names == ("entailment", "contradiction", "neutral")  # the hub's label order
    assert get_task("rte").hub.name == "rte" and get_task("wsc").hub.name == "wsc.fixed"
    assert get_task("copa").hub.splits["test"] == "validation"  # the hub's test labels are hidden


def test_cb_labels_and_template(tmp_path):
    task = get_task("cb", data_dir=str(write_fewglue_tasks(tmp_path)))
    train = task.load_split("train")
    assert len(train) == 16 and train.features["label"].dtype == "int64"
    names = ["entailment", "contradiction", "neutral"]
    for example in train:  # premise i carries label i % 3 in the file, as a name
        assert names[example["label"]] == names[int(example["premise"].split()[1]) % 3]
    example = train[0]
    assert task.format(example, "P") == (f"P Premise: {example['premise']} Hypothesis: {example['hypothesis']} "
                                         "Does the premise entail the hypothesis? Answer:")
    assert task.verbalizers == (" yes", " no", " maybe")


def test_copa_asks_for_cause_or_effect(tmp_path):
    task = get_task("copa", data_dir=str(write_fewglue_tasks(tmp_path)))
    for example in task.load_split("dev"):
        i = int(example["premise"].split()[1].rstrip("."))
        assert example["label"] == i % 2
        assert task.format(example, "P") == (f"P Premise: premise {i}. What was the {'cause' if i % 2 else 'effect'}? "
                                             f"First: first {i}. Second: second {i}. Answer:")
    assert task.verbalizers == (" first", " second") and task.label_names == ("choice1", "choice2")


def test_wsc_reads_the_nested_spans(tmp_path):
    task = get_task("wsc", data_dir=str(write_fewglue_tasks(tmp_path)))
    test = task.load_split("test")
    assert test.column_names == ["text", "span1_text", "span2_text", "label"]
    for example in test:
        i = int(example["text"].split()[1])
        assert example["span1_text"] == f"thing {i}" and example["label"] == int(i % 4 == 0)
    example = test[0]
    assert task.format(example, "P") == f'P {example["text"]} Question: does "it" refer to "{example["span1_text"]}"? Answer:'
    # the same partition as every FewGLUE task: 16 / 8 / 8, disjoint
    texts = [set(task.load_split(s)["text"]) for s in ("train", "dev", "test")]
    assert [len(t) for t in texts] == [16, 8, 8] and len(set.union(*texts)) == 32


def test_rte_and_wsc_evaluate_with_tiny_gpt2(tmp_path):
    write_fewglue_tasks(tmp_path)
    (tmp_path / "RTE").mkdir()
    (tmp_path / "RTE" / "train.jsonl").write_text("".join(
        json.dumps({"premise": f"p {i}", "hypothesis": f"h {i}", "label": ["entailment", "not_entailment"][i % 2]}) + "\n"
        for i in range(32)))
    lm = load_lm("tiny-gpt2")
    for name in ("rte", "wsc"):
        report = evaluate_prompt(get_task(name, data_dir=str(tmp_path)), lm, "yes or no", split="dev", progress=False)
        assert report.num_examples == 8 and sum(report.predicted_fraction.values()) == pytest.approx(1.0)


@pytest.mark.slow
def test_superglue_verbalizers_are_single_smollm2_tokens():
    tokenizer = load_lm("smollm2-135m").tokenizer
    for name in ("boolq", "cb", "rte", "copa", "wsc"):
        task = get_task(name)
        assert len(set(task.verbalizer_ids(tokenizer))) == task.num_classes


@pytest.mark.skipif(not (SHARED_DATA / "fewglue" / "WSC").is_dir(), reason="shared FewGLUE data is absent")
def test_shared_fewglue_superglue_tasks():
    for name in ("cb", "rte", "copa", "wsc"):
        task = get_task(name, data_dir=str(SHARED_DATA / "fewglue"))
        splits = [task.load_split(s) for s in ("train", "dev", "test")]
        assert [len(s) for s in splits] == [16, 8, 8]
        assert all(0 <= label < task.num_classes for s in splits for label in s["label"])
