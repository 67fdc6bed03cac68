"""``rlprompt-interp predict`` and ``LearnedPrompt.classify``: new texts get the class eval gives them, with
probabilities computed by hand; label names in CSV/TSV; the reward terms beside the sum; eval's cheap scorer."""

import csv
import io
import json

import pytest
import torch

from rlprompt_interp.algorithms.trainer import _console_figures
from rlprompt_interp.cli import main
from rlprompt_interp.evaluation import evaluate_prompt
from rlprompt_interp.metrics.report import build_report
from rlprompt_interp.prompts import LearnedPrompt
from rlprompt_interp.rewards import Perplexity, TaskGapReward, perplexity_scorer
from rlprompt_interp.tasks import get_task, task_from_json
from rlprompt_interp.tasks.recorded import recorded_task

pytestmark = pytest.mark.usefixtures("single_thread")

REVIEWS = [("the movie was great fun", "good"), ("an awful boring film", "bad"), ("really good acting", "good"),
           ("the worst plot", "bad"), ("beautiful and funny", "good"), ("sad and boring", "bad")]
TEMPLATE = "{sentence} All in all it was{prompt}"


@pytest.fixture
def learned(tiny_gpt2, tmp_path):
    """A discrete prompt as `train` saves it (token ids of the task LM, the task definition in its provenance)."""
    prompt = LearnedPrompt(text=" so", token_ids=tiny_gpt2.tokenizer.encode(" so", add_special_tokens=False),
                           provenance={"task": "reviews", "task_model": "tiny-gpt2", "template": TEMPLATE,
                                       "verbalizers": [" bad", " good"], "label_names": ["negative", "positive"]})
    prompt.save(tmp_path / "run")
    return prompt


def write_task(folder, suffix: str, rows=REVIEWS, label_names=None) -> str:
    """A task.json beside train/dev/test files (.csv, .tsv or .jsonl) whose label column holds names: the
    verbalizers' words, or ``label_names`` in their place."""
    if label_names:
        rows = [(text, dict(zip(("bad", "good"), label_names)).get(label, label)) for text, label in rows]
    for split in ("train", "dev", "test"):
        path = folder / f"{split}{suffix}"
        if suffix == ".jsonl":
            path.write_text("".join(json.dumps({"review": text, "stars": label}) + "\n" for text, label in rows))
        else:
            delimiter = "\t" if suffix == ".tsv" else ","
            path.write_text(f"review{delimiter}stars\n" + "".join(f"{text}{delimiter}{label}\n" for text, label in rows))
    spec = {"name": "reviews", "files": {split: f"{split}{suffix}" for split in ("train", "dev", "test")},
            "template": TEMPLATE, "verbalizers": [" bad", " good"], "text_column": "review", "label_column": "stars"}
    if label_names:
        spec["label_names"] = label_names
    (folder / "task.json").write_text(json.dumps(spec))
    return str(folder / "task.json")


def by_hand(lm, text: str, prompt_ids: list[int]) -> torch.Tensor:
    """The class probabilities of one text: a plain forward of template(text) + the prompt's ids."""
    before = lm.tokenizer.encode(TEMPLATE.split("{prompt}")[0].format(sentence=text), add_special_tokens=False)
    ids = [lm.tokenizer.encode(word, add_special_tokens=False)[0] for word in (" bad", " good")]
    with torch.no_grad():
        logits = lm.model(torch.tensor([before + prompt_ids])).logits[0, -1, ids]
    return logits.float().softmax(-1)


def test_classify_gives_eval_s_classes_and_the_probabilities_of_a_plain_forward(tiny_gpt2, learned, tmp_path):
    task = task_from_json(write_task(tmp_path, ".jsonl", label_names=["negative", "positive"]))
    report = evaluate_prompt(task, tiny_gpt2, learned, split="test", batch_size=4, progress=False)
    texts = [text for text, _ in REVIEWS]
    predictions = learned.classify(texts, tiny_gpt2, batch_size=4)
    assert predictions.indices == report.predicted
    assert predictions.labels == [("negative", "positive")[i] for i in report.predicted]
    expected = torch.stack([by_hand(tiny_gpt2, text, learned.token_ids) for text in texts])
    assert torch.allclose(predictions.probabilities, expected, atol=1e-5)
    first = predictions.rows()[0]
    assert first["label"] == predictions.labels[0] and list(first["probabilities"]) == ["negative", "positive"]
    assert list(first["probabilities"].values()) == pytest.approx(expected[0].tolist(), abs=1e-5)


def test_predict_writes_one_row_per_text_as_eval_labels_them(tiny_gpt2, learned, tmp_path, capsys):
    task_file = write_task(tmp_path, ".jsonl", label_names=["negative", "positive"])
    unlabelled = tmp_path / "reviews.jsonl"
    unlabelled.write_text("".join(json.dumps({"review": text}) + "\n" for text, _ in REVIEWS))
    assert main(["predict", "--learned", str(tmp_path / "run"), "--input", str(unlabelled), "--output",
                 str(tmp_path / "labels.jsonl"), "--quiet"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "labels.jsonl").read_text().splitlines()]
    report = evaluate_prompt(task_from_json(task_file), tiny_gpt2, learned, split="test", progress=False)
    assert [row["review"] for row in rows] == [text for text, _ in REVIEWS]
    assert [row["label"] for row in rows] == [("negative", "positive")[i] for i in report.predicted]
    assert all(sum(row["probabilities"].values()) == pytest.approx(1) for row in rows)
    assert "labelled 6 texts" in capsys.readouterr().err
    # CSV out, the same labels; and the task given again (with its own labelled file as the input)
    assert main(["predict", "--learned", str(tmp_path / "run"), "--task", task_file, "--input",
                 str(tmp_path / "test.jsonl"), "--output", str(tmp_path / "labels.csv"), "--quiet"]) == 0
    table = list(csv.DictReader(io.StringIO((tmp_path / "labels.csv").read_text())))
    assert [row["label"] for row in table] == [row["label"] for row in rows]
    assert list(table[0]) == ["review", "label", "probability negative", "probability positive"]


def test_predict_reads_standard_input_one_text_per_line(learned, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("a warm film\n\nthe worst plot\n"))
    assert main(["predict", "--learned", str(tmp_path / "run"), "--quiet"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["sentence"] for row in out] == ["a warm film", "the worst plot"]
    assert out == [{"sentence": text, **row} for text, row in
                   zip(["a warm film", "the worst plot"], learned.classify(["a warm film", "the worst plot"]).rows())]


def test_a_text_prompt_needs_a_task_and_gets_the_text_path(tiny_gpt2, sst_files, tmp_path, capsys):
    texts = tmp_path / "texts.tsv"
    texts.write_text("id\tsentence\n1\tthe movie was great fun\n2\tsad and boring\n")
    argv = ["predict", "--prompt", " so", "--input", str(texts), "--model", "tiny-gpt2", "--quiet"]
    assert main(argv) == 2 and "--prompt TEXT needs --task" in capsys.readouterr().err
    assert main(argv + ["--task", "sst-2"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    task = get_task("sst-2", data_dir=str(sst_files))
    report = evaluate_prompt(task, tiny_gpt2, " so", split="test", progress=False)  # rows 1 and 6 of the split
    assert [row["label"] for row in rows] == [task.label_names[report.predicted[i]] for i in (0, 5)]


def test_the_recorded_task_fills_label_names_from_the_built_in_task():
    task = recorded_task({"task": "sst-2", "template": "{sentence} It was{prompt}", "verbalizers": [" bad", " good"]})
    assert task.label_names == ("negative", "positive") and task.template.fields == ("sentence",)
    assert recorded_task({"task": "mine", "template": TEMPLATE, "verbalizers": [" no", " yes"]}).label_names == \
        ("no", "yes")
    boolq = recorded_task({"task": "boolq"})
    assert set(boolq.template.fields) == {"passage", "question"}


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
@pytest.mark.parametrize("label_names", [None, ["negative", "positive"]])
def test_label_names_read_in_every_format(tmp_path, suffix, label_names):
    task = task_from_json(write_task(tmp_path, suffix, REVIEWS, label_names))
    assert task.load_split("test")["label"] == [1, 0, 1, 0, 1, 0]


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_an_unknown_label_name_is_named_with_its_row(tmp_path, suffix, capsys):
    rows = REVIEWS[:3] + [("meh", "so-so")] + REVIEWS[4:]
    task_file = write_task(tmp_path, suffix, rows)
    assert main(["eval", "--task", task_file, "--model", "no/such-model", "--quiet"]) == 2  # before the model
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"test{suffix}: example 4 has the label 'so-so', which is neither a class index (0..1) nor a label " \
           "name ['bad', 'good']" in err


def test_a_csv_with_label_names_trains_and_evaluates(tmp_path, capsys):
    task_file = write_task(tmp_path, ".csv")
    assert main(["train", "--task", task_file, "--model", "tiny-gpt2", "--steps", "2", "--prompt-length", "2",
                 "--prompts-per-step", "2", "--examples-per-step", "2", "--mlp-width", "16", "--eval-every", "1",
                 "--rescore-top", "1", "--rescore-samples", "0", "--quiet", "--output", str(tmp_path / "run")]) == 0
    scores = json.loads((tmp_path / "run" / "scores.json").read_text())
    assert scores["test_accuracy"] * 6 == pytest.approx(round(scores["test_accuracy"] * 6))  # k of the 6 rows
    assert main(["eval", "--task", task_file, "--learned", str(tmp_path / "run"), "--quiet", "--no-perplexity"]) == 0
    assert f"accuracy      {scores['test_accuracy']:.4f}" in capsys.readouterr().out


def test_the_console_shows_each_reward_term_beside_the_sum():
    logs = {"loss": 3.0, "reward": 2.71, "gap/score": 2.76, "time/gap": 0.1, "keywords/mean": -0.095,
            "keywords/score": -0.095, "accuracy": 0.625, "sample": "x"}
    assert list(_console_figures(logs)) == ["reward", "gap/score", "keywords/score", "accuracy", "loss"]
    assert list(_console_figures({"reward": 1.0, "gap/score": 1.0, "loss": 2.0})) == ["reward", "loss"]


def test_eval_scores_perplexity_with_the_prompt_s_own_scorer_or_the_task_lm(tiny_gpt2, sst_files):
    from rlprompt_interp.models import load_lm

    task = get_task("sst-2", data_dir=str(sst_files))
    report = build_report(task, tiny_gpt2, " so good", batch_size=4, progress=False)
    assert (report.scorer, report.scorer_from) == ("tiny-gpt2", "the task LM")
    assert "perplexity (tiny-gpt2, the task LM)" in report.format()
    llama = load_lm("tiny-llama", device="cpu")
    reward = TaskGapReward(task, tiny_gpt2) + 0.01 * Perplexity(llama)
    assert perplexity_scorer(reward) == "tiny-llama" and perplexity_scorer(TaskGapReward(task, tiny_gpt2)) is None
    prompt = LearnedPrompt(text=" so", token_ids=tiny_gpt2.tokenizer.encode(" so", add_special_tokens=False),
                           provenance={"scorer_model": "tiny-llama"})
    report = build_report(task, tiny_gpt2, prompt, batch_size=4, progress=False, faithfulness_for_discrete=False)
    assert (report.scorer, report.scorer_from) == ("tiny-llama", "its reward's scorer")


def test_a_soft_prompt_labels_texts_as_eval_does(tiny_gpt2, sst_files):
    task = get_task("sst-2", data_dir=str(sst_files))
    hidden = tiny_gpt2.model.get_input_embeddings().weight.shape[1]
    soft = LearnedPrompt(text="?", embeddings=torch.randn(2, hidden, generator=torch.Generator().manual_seed(0)),
                         provenance={"task": "sst-2", "task_model": "tiny-gpt2"})
    report = evaluate_prompt(task, tiny_gpt2, soft, split="test", progress=False)
    texts = list(task.load_split("test")["sentence"])
    assert soft.classify(texts, tiny_gpt2, task=task).indices == report.predicted


def test_a_task_of_two_fields_reads_one_column_each(tiny_gpt2, tmp_path, capsys):
    from rlprompt_interp.prediction import classify

    rows = [{"passage": "Water boils at 100 degrees.", "question": "does water boil at 100 degrees"},
            {"passage": "Cats are mammals.", "question": "are cats birds"}]
    (tmp_path / "questions.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    prompt = LearnedPrompt(text=" so", token_ids=tiny_gpt2.tokenizer.encode(" so", add_special_tokens=False),
                           provenance={"task": "boolq", "task_model": "tiny-gpt2"})
    prompt.save(tmp_path / "run")
    assert main(["predict", "--learned", str(tmp_path / "run"), "--input", str(tmp_path / "questions.jsonl"),
                 "--quiet"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = classify(recorded_task(prompt.provenance), tiny_gpt2, prompt, rows)
    assert [row["label"] for row in out] == expected.labels and out[0]["question"] == rows[0]["question"]
