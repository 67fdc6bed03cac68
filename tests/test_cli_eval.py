import json
import subprocess
import sys

import pytest
import torch

from conftest import FEW_SHOT, needs_shared_data
from rlprompt_interp.cli import main
from rlprompt_interp.evaluation import class_logits, evaluate_prompt, summarise
from rlprompt_interp.models import load_lm
from rlprompt_interp.tasks import get_task, task_from_files


def test_summarise_by_hand():
    task = get_task("sst-2")
    report = summarise(task, "test", "", predictions=[1, 1, 0, 1], labels=[1, 0, 0, 1])
    assert report.accuracy == 0.75 and report.num_examples == 4
    assert report.per_class_accuracy == {"negative": 0.5, "positive": 1.0}
    assert report.predicted_fraction == {"negative": 0.25, "positive": 0.75}
    assert report.correct == [1, 0, 1, 1]  # per example, for paired comparisons; not in the JSON or the text
    assert "correct" not in report.to_dict() and "[1, 0, 1, 1]" not in report.format()
    assert report.balanced_accuracy == 0.75  # (0.5 + 1.0) / 2


def test_balanced_accuracy_weighs_every_class_alike():
    # six of one class predicted right, two of the other wrong: 0.75 overall, (1 + 0) / 2 over the classes; a class
    # absent from the split does not count
    report = summarise(get_task("sst-2"), "test", "", predictions=[1] * 8, labels=[1] * 6 + [0] * 2)
    assert report.accuracy == 0.75 and report.balanced_accuracy == 0.5
    assert "balanced (mean over classes) 0.5000" in report.format()
    trec = summarise(get_task("trec"), "test", "", predictions=[0, 0, 5, 1], labels=[0, 0, 5, 5])
    assert trec.per_class_accuracy["number"] == 0.5 and trec.balanced_accuracy == 0.75  # description 1, number 0.5


def test_eval_matches_a_direct_forward(sst_files):
    lm = load_lm("tiny-gpt2", device="cpu")
    task = get_task("sst-2", data_dir=str(sst_files))
    report = evaluate_prompt(task, lm, " so", split="test", batch_size=4, progress=False)
    ids = task.verbalizer_ids(lm.tokenizer)
    correct = 0
    for example in task.load_split("test"):
        tokens = lm.tokenizer.encode(task.format(example, " so"), add_special_tokens=False)
        with torch.no_grad():
            logits = lm.model(torch.tensor([tokens])).logits[0, -1, ids]
        correct += int(logits.argmax()) == example["label"]
    assert report.accuracy == pytest.approx(correct / 6)


@pytest.mark.parametrize("text", [" so great", ""])
def test_learned_prompts_are_scored_through_the_shared_example_cache(sst_files, text, monkeypatch):
    from rlprompt_interp import evaluation
    from rlprompt_interp.prompts import LearnedPrompt
    from rlprompt_interp.scoring import batched_next_token_logits, segment_example

    lm = load_lm("tiny-gpt2", device="cpu")
    task = get_task("sst-2", data_dir=str(sst_files))
    ids = lm.tokenizer.encode(text, add_special_tokens=False)
    examples = task.load_split("test")
    evaluation.clear_caches()
    verbalizers = task.verbalizer_ids(lm.tokenizer)
    cached = evaluation.prompt_logits(task, lm, LearnedPrompt(text=text, token_ids=ids), examples, verbalizers)
    full = batched_next_token_logits(lm, [b + ids + a for b, a in (segment_example(lm, *task.template.split(e), ids)
                                                                   for e in examples)], verbalizers)
    torch.testing.assert_close(cached, full, atol=1e-4, rtol=1e-4)
    assert evaluation.example_cache_scorer(task, lm).last_new_pairs == len(examples)
    # a second prompt on the same split re-uses the examples' states: only its own pairs reach the LM
    encoded = []
    add = evaluation._EXAMPLE_CACHES[(id(lm.model), lm.dtype)].add
    monkeypatch.setattr(evaluation._EXAMPLE_CACHES[(id(lm.model), lm.dtype)], "add",
                        lambda items: encoded.append([k for k in items if k not in add.__self__]) or add(items))
    other = LearnedPrompt(text=" no", token_ids=lm.tokenizer.encode(" no", add_special_tokens=False))
    evaluation.prompt_logits(task, lm, other, examples, verbalizers)
    assert encoded == [[]]
    # no prompt reads the same classes as the text path
    assert evaluation.evaluate_prompt(task, lm, "", progress=False).predicted == \
        class_logits(task, lm, "", examples, progress=False).argmax(-1).tolist()


def test_cli_eval_writes_report(sst_files, tmp_path, capsys):
    out = tmp_path / "report.json"
    code = main(["eval", "--task", "sst-2", "--model", "tiny-gpt2", "--data-dir", str(sst_files), "--split", "dev",
                 "--template", "Review: {sentence}\\nSentiment:{prompt}", "--verbalizers", " negative", " positive",
                 "--output", str(out), "--quiet", "--batch-size", "4"])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["num_examples"] == 6 and set(report["per_class_accuracy"]) == {"negative", "positive"}
    assert "accuracy" in capsys.readouterr().out


def test_cli_eval_custom_data_files(tmp_path):
    (tmp_path / "mine.csv").write_text("text,y\ngood film,1\nbad film,0\n")
    code = main(["eval", "--task", "mine", "--model", "tiny-llama", "--data-files", f"test={tmp_path / 'mine.csv'}",
                 "--text-column", "text", "--label-column", "y", "--verbalizers", " bad", " good", "--quiet"])
    assert code == 0


@pytest.mark.parametrize("argv, message", [
    (["--task", "nope"], "unknown task 'nope'"),
    (["--task", "sst-2", "--model", "no-org/no-model-xyz"], "smollm2-135m"),
    (["--task", "sst-2", "--template", "{sentence}"], "no {prompt} slot"),
    (["--task", "sst-2", "--verbalizers", "terrible", " great"], "leading space"),
    (["--task", "sst-2", "--split", "train", "--seed-split", "16-99"], "no train split"),
])
def test_cli_errors_are_clear(sst_files, capsys, argv, message):
    argv = ["eval", "--model", "tiny-gpt2", "--data-dir", str(sst_files), "--quiet", *argv]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
@needs_shared_data()
@pytest.mark.parametrize("cpu_bf16", ["0", "1"], ids=["fp32-cpu", "bf16-cpu"])
def test_embedded_model_matches_reference_eval(tmp_path, monkeypatch, cpu_bf16):
    """`rlprompt-interp eval` against the independent plain-transformers fp32 script in ../shared/tools,
    on the same 96 sentences (the script's --limit takes the first rows, ours a stratified draw), on a
    CPU without bf16 instructions and on one with them (where `auto` trains in bf16): evaluation is
    fp32 unless asked, so the reported accuracy is the same on both."""
    monkeypatch.setenv("RLPROMPT_INTERP_CPU_BF16", cpu_bf16)
    reference = FEW_SHOT.parent.parent / "tools" / "reference_eval.py"
    sample = tmp_path / "test.tsv"
    sample.write_text("".join((FEW_SHOT / "sst-2" / "test.tsv").read_text().splitlines(keepends=True)[:97]))
    template = "Review: {sentence}\nSentiment:{prompt}"
    out = subprocess.run([sys.executable, str(reference), str(sample), "--template", template,
                          "--verbalizers", " negative", " positive"],
                         capture_output=True, text=True, check=True).stdout
    expected = float(out.split("accuracy=")[1].split()[0])
    report_file = tmp_path / "report.json"
    assert main(["eval", "--task", "sst-2", "--data-files", f"test={sample}", "--template", template,
                 "--verbalizers", " negative", " positive", "--model", "smollm2-135m", "--prompt", "",
                 "--no-perplexity", "--quiet", "--output", str(report_file)]) == 0
    report = json.loads(report_file.read_text())
    assert report["num_examples"] == 96
    assert report["accuracy"] == pytest.approx(expected, abs=5e-5)  # the script prints 4 decimals
    assert report["accuracy"] > 0.65  # the hand-written template works on this model
    assert report["computed_with"]["dtype"] == "float32"
    assert report["computed_with"]["cpu_bf16"] is (cpu_bf16 == "1")
