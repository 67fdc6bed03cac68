"""Style-transfer evaluation: the report's figures agree with the written outputs; the CLI commands run."""

import csv
import json

import pytest
import sacrebleu
import torch

from rlprompt_interp.cli import main
from rlprompt_interp.rewards.style import StyleClassifier
from rlprompt_interp.style.classifier import train_style_classifier
from rlprompt_interp.style.evaluation import evaluate_style_transfer
from rlprompt_interp.tasks.style_transfer import style_task_from_folder

from test_style_task import NEGATIVE, POSITIVE, write_corpus


class LengthStyle:
    styles = ["negative", "positive"]

    def predict_proba(self, texts, batch_size=64):
        positive = torch.tensor([min(0.95, 0.05 + len(t) / 30) for t in texts])
        return torch.stack([1 - positive, positive], dim=-1)


@pytest.fixture(scope="module")
def classifier_folder(tmp_path_factory):
    classifier = train_style_classifier([NEGATIVE, POSITIVE], styles=["negative", "positive"], epochs=50, lr=0.05,
                                        heldout_fraction=0.0, cache=False, log=lambda *_: None)
    return classifier.save(tmp_path_factory.mktemp("clf") / "style-classifier")


def test_report_agrees_with_outputs(tmp_path, tiny_gpt2):
    task = style_task_from_folder(write_corpus(tmp_path / "c"), direction="0_to_1", dev_size=2)
    report = evaluate_style_transfer(task, tiny_gpt2, "great", classifier=StyleClassifier(LengthStyle()),
                                     scorer=tiny_gpt2, num_samples=2, length_ratio=2.0, fluency_threshold=1e9,
                                     outputs_file=tmp_path / "out.tsv", progress=False)
    with open(tmp_path / "out.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert [r["input"] for r in rows] == NEGATIVE[:3] and [r["reference"] for r in rows] == POSITIVE[:3]
    outputs = [r["output"] for r in rows]
    probs = torch.tensor([float(r["target_style_probability"]) for r in rows])
    content = torch.tensor([float(r["content"]) for r in rows])
    assert report.examples == 3 and report.samples_per_input == 2
    assert report.style_accuracy == pytest.approx(float((probs > 0.5).float().mean()))
    assert report.content == pytest.approx(float(content.mean()), abs=1e-4)
    nonempty = torch.tensor([bool(o.strip()) for o in outputs]).float()
    assert report.fluency == pytest.approx(float(nonempty.mean()))  # threshold 1e9: every scored output is fluent
    assert report.joint == pytest.approx(float((content * (probs > 0.5).float() * nonempty).mean()), abs=1e-4)
    assert report.geometric_mean == pytest.approx((report.content * report.style_accuracy * report.fluency) ** (1 / 3))
    assert report.bleu_inputs == pytest.approx(sacrebleu.corpus_bleu(outputs, [NEGATIVE[:3]]).score)
    assert report.bleu_references == pytest.approx(sacrebleu.corpus_bleu(outputs, [POSITIVE[:3]]).score)
    assert "joint" in report.format()


def test_style_eval_command(tmp_path, classifier_folder, capsys):
    corpus = write_corpus(tmp_path / "c")
    code = main(["style-eval", "--task", str(corpus), "--model", "tiny-gpt2", "--scorer", "tiny-gpt2",
                 "--style-classifier", str(classifier_folder), "--direction", "1_to_0", "--prompt", "negative",
                 "--limit", "2", "--output", str(tmp_path / "report.json"), "--quiet"])
    assert code == 0
    saved = json.loads((tmp_path / "report.json").read_text())
    assert list(saved["directions"]) == ["1_to_0"] and saved["directions"]["1_to_0"]["examples"] == 2
    assert (tmp_path / "report.1_to_0.outputs.tsv").is_file()


def test_train_style_classifier_command_and_errors(tmp_path, capsys):
    corpus = write_corpus(tmp_path / "c")
    code = main(["train-style-classifier", "--task", str(corpus), "--output", str(tmp_path / "clf"),
                 "--epochs", "30", "--no-cache"])
    assert code == 0 and (tmp_path / "clf" / "style_classifier.json").is_file()
    assert "test_accuracy" in json.loads((tmp_path / "clf" / "style_classifier.json").read_text())["metrics"]
    code = main(["style-eval", "--task", str(corpus), "--model", "tiny-gpt2", "--scorer", "tiny-gpt2",
                 "--style-classifier", str(tmp_path), "--quiet"])
    assert code == 2 and "neither" in capsys.readouterr().err
    code = main(["style-eval", "--task", "yelp-style", "--data-dir", str(tmp_path / "missing"), "--quiet",
                 "--style-classifier", str(tmp_path / "clf"), "--model", "tiny-gpt2", "--scorer", "tiny-gpt2"])
    assert code == 2 and "pass --data-dir" in capsys.readouterr().err


def test_generic_eval_command_routes_yelp_style(tmp_path, classifier_folder, monkeypatch, capsys):
    corpus = write_corpus(tmp_path / "yelp", prefix="sentiment")
    monkeypatch.setenv("RLPROMPT_INTERP_STYLE_CLASSIFIER", str(classifier_folder))
    code = main(["eval", "--task", "yelp-style", "--data-dir", str(corpus), "--model", "tiny-gpt2",
                 "--scorer", "tiny-gpt2", "--limit", "2", "--output", str(tmp_path / "r.json"), "--quiet"])
    assert code == 0
    saved = json.loads((tmp_path / "r.json").read_text())
    assert sorted(saved["directions"]) == ["0_to_1", "1_to_0"]  # no direction named: both
    assert "yelp-style:1_to_0" in capsys.readouterr().out
