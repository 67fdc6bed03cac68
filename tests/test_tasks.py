import json

import pytest

from conftest import FEW_SHOT, needs_shared_data
from rlprompt_interp.tasks import (
    RLPROMPT_VERBALIZERS, TaskDataError, Template, TemplateError, UnknownTaskError, VerbalizerError, get_task, list_tasks, task_from_json,
)
from rlprompt_interp.tiny import build_test_tokenizer


def test_builtin_tasks_and_verbalizers():
    assert list_tasks() == ["agnews", "boolq", "cb", "copa", "cr", "dbpedia", "mr", "rte", "sst-2", "sst-5", "subj", "trec",
                            "wsc", "yahoo", "yelp-2", "yelp-5"]
    assert get_task("sst-2").verbalizers == (" negative", " positive")
    assert get_task("sst-2", verbalizers=list(RLPROMPT_VERBALIZERS["sst-2"])).verbalizers == (" terrible", " great")
    assert get_task("trec").num_classes == 6
    assert get_task("sst-2").template.text == "{sentence} {prompt}"


def test_unknown_task():
    with pytest.raises(UnknownTaskError, match="unknown task 'sst2'.*sst-2"):
        get_task("sst2")


@pytest.mark.parametrize("text, message", [
    ("{sentence} and more", "no \\{prompt\\} slot"),
    ("Review: {prompt}", "no slot for \\{sentence\\}"),
    ("{sentence} {prompt} {label}", "unknown fields \\['label'\\]"),
    ("{sentence {prompt}", "not a valid format string"),
])
def test_bad_templates(text, message):
    with pytest.raises(TemplateError, match=message):
        Template(text)


def test_template_format_and_split():
    template = Template("Review: {sentence}\nSentiment:{prompt}")
    assert template.format({"sentence": "fun"}, " so") == "Review: fun\nSentiment: so"
    assert template.split({"sentence": "fun"}) == ("Review: fun\nSentiment:", "")
    assert template.example_first and not Template("{prompt} {sentence}").example_first


def test_verbalizer_that_is_not_one_token_suggests_leading_space():
    tokenizer = build_test_tokenizer()
    task = get_task("sst-2", verbalizers=["terrible", " great"])
    with pytest.raises(VerbalizerError, match="'terrible' -> \\d+ tokens.*leading space: try ' terrible'"):
        task.verbalizer_ids(tokenizer)
    assert len(get_task("sst-2").verbalizer_ids(tokenizer)) == 2


def test_wrong_number_of_verbalizers():
    with pytest.raises(VerbalizerError, match="2 classes"):
        get_task("sst-2", verbalizers=[" bad", " okay", " good"])


def test_few_shot_layout(sst_files):
    task = get_task("sst-2", data_dir=str(sst_files))
    test = task.load_split("test")
    assert len(test) == 6 and test.column_names == ["sentence", "label"]
    assert test[0] == {"sentence": "the movie was great fun", "label": 1}
    assert len(task.load_split("train", limit=2)) == 2


def test_missing_split_lists_seeds(sst_files):
    task = get_task("sst-2", data_dir=str(sst_files), seed="16-13")
    with pytest.raises(TaskDataError, match="no train split.*16-42"):
        task.load_split("train")
    with pytest.raises(TaskDataError, match="unknown split 'validation'"):
        task.load_split("validation")


def test_missing_data_dir(tmp_path):
    with pytest.raises(TaskDataError, match="does not exist"):
        get_task("sst-2", data_dir=str(tmp_path / "nowhere")).load_split("test")


def test_empty_split(sst_files):
    (sst_files / "sst-2" / "test.tsv").write_text("sentence\tlabel\n")
    with pytest.raises(TaskDataError, match="no examples"):
        get_task("sst-2", data_dir=str(sst_files)).load_split("test")


def test_wrong_columns(sst_files):
    (sst_files / "sst-2" / "test.tsv").write_text("review\tstars\ngood\t1\n")
    with pytest.raises(TaskDataError, match="columns \\['review', 'stars'\\].*missing \\['sentence', 'label'\\]"):
        get_task("sst-2", data_dir=str(sst_files)).load_split("test")


def test_label_out_of_range(sst_files):
    (sst_files / "sst-2" / "test.tsv").write_text("sentence\tlabel\ngood\t1\nmeh\t2\n")
    with pytest.raises(TaskDataError, match="labels \\[2\\] outside 0..1"):
        get_task("sst-2", data_dir=str(sst_files)).load_split("test")


def test_user_task_from_json_with_named_labels(tmp_path):
    rows = [{"review": "loved it", "stars": "positive"}, {"review": "hated it", "stars": "negative"}]
    (tmp_path / "test.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    spec = {"name": "mine", "files": {"test": "test.jsonl"}, "template": "{sentence} It was{prompt}",
            "verbalizers": [" bad", " good"], "label_names": ["negative", "positive"],
            "text_column": "review", "label_column": "stars"}
    (tmp_path / "task.json").write_text(json.dumps(spec))
    task = task_from_json(tmp_path / "task.json")
    data = task.load_split("test")
    assert data["label"] == [1, 0] and data["sentence"] == ["loved it", "hated it"]
    assert task.format(data[0], "") == "loved it It was"
    with pytest.raises(TaskDataError, match="no 'train' file"):
        task.load_split("train")


def test_user_task_file_errors(tmp_path):
    (tmp_path / "task.json").write_text(json.dumps({"files": {"test": "t.tsv"}}))
    with pytest.raises(TaskDataError, match="misses \\['verbalizers'\\]"):
        task_from_json(tmp_path / "task.json")
    with pytest.raises(UnknownTaskError, match="does not exist"):
        get_task(str(tmp_path / "other.json"))


@needs_shared_data()
@pytest.mark.parametrize("name, sizes", [("sst-2", (32, 32, 1821)), ("agnews", (64, 64, 7600)), ("trec", (96, 96, 500))])
def test_shared_few_shot_data(name, sizes):
    task = get_task(name, data_dir=str(FEW_SHOT), seed="16-42")
    assert tuple(len(task.load_split(s)) for s in ("train", "dev", "test")) == sizes
    assert set(task.load_split("train")["label"]) == set(range(task.num_classes))


def test_a_task_describes_itself_from_its_answers_or_its_own_words(tmp_path):
    """`--condition auto`'s text: the task's description, else one derived from the verbalizers."""
    assert get_task("sst-2").describe() == "Classify the sentiment of this movie review as positive or negative."
    assert all(get_task(name).description for name in ("sst-2", "sst-5", "agnews", "subj", "trec"))
    assert get_task("sst-5").describe().count(",") == 3 and " or " in get_task("sst-5").describe()
    (tmp_path / "train.tsv").write_text("sentence\tlabel\ngood\t1\nbad\t0\n")
    spec = {"files": {"train": "train.tsv"}, "verbalizers": [" bad", " good"]}
    (tmp_path / "plain.json").write_text(json.dumps(spec))
    assert get_task(str(tmp_path / "plain.json")).describe() == "Classify this text as bad or good."
    (tmp_path / "own.json").write_text(json.dumps({**spec, "description": "Is this review happy?"}))
    assert get_task(str(tmp_path / "own.json")).describe() == "Is this review happy?"
    (tmp_path / "bad.json").write_text(json.dumps({**spec, "description": 3}))
    with pytest.raises(TaskDataError, match="'description' must be a string"):
        get_task(str(tmp_path / "bad.json"))
