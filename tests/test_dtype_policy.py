"""The dtype policy on every CPU: `auto` trains in bf16 where the CPU has bf16 instructions (here
simulated with the `bf16_cpu` fixture, so a machine without them runs that path too), reported
accuracies are computed in fp32 unless asked, every artifact names the dtype, and a checkpoint
resumes only in the dtype it was written in."""

import json

import pytest
import torch

from rlprompt_interp.cli import main
from rlprompt_interp.models import compute_record, load_lm, resolve_dtype
from rlprompt_interp.prompts import LearnedPrompt

pytestmark = pytest.mark.usefixtures("single_thread")


def test_auto_follows_the_cpu(bf16_cpu, monkeypatch):
    cpu = torch.device("cpu")
    assert resolve_dtype("auto", cpu) == torch.bfloat16
    assert compute_record("auto", cpu) == {"dtype": "bfloat16", "device": "cpu", "cpu_bf16": True,
                                           "torch": torch.__version__}
    monkeypatch.setenv("RLPROMPT_INTERP_CPU_BF16", "0")
    assert resolve_dtype("auto", cpu) == torch.float32
    assert compute_record("float32", cpu)["cpu_bf16"] is False
    assert load_lm("tiny-gpt2", device="cpu", dtype="auto").dtype == torch.float32


@pytest.fixture
def train_args(sst_files):
    return ["train", "--agent", "rlprompt", "--task", "sst-2", "--data-dir", str(sst_files), "--model", "tiny-gpt2",
            "--prompt-length", "3", "--prompts-per-step", "4", "--examples-per-step", "4", "--eval-every", "2",
            "--lr", "1e-3", "--mlp-width", "64", "--quiet"]


def test_a_bf16_cpu_trains_in_bf16_and_reports_fp32_accuracy(bf16_cpu, train_args, sst_files, tmp_path):
    out = tmp_path / "run"
    assert main(train_args + ["--steps", "2", "--output", str(out)]) == 0
    learned = LearnedPrompt.load(out)
    assert learned.provenance["computed_with"]["dtype"] == "bfloat16"  # training took the fast path
    assert learned.provenance["computed_with"]["cpu_bf16"] is True
    scores = json.loads((out / "scores.json").read_text())
    assert scores["test_computed_with"]["dtype"] == "float32"  # the reported figure did not

    # `eval` of the same prompt: fp32 by default, the same accuracy as train's report; bf16 when asked
    def evaluate(*extra):
        report = tmp_path / f"report{len(extra)}.json"
        assert main(["eval", "--task", "sst-2", "--data-dir", str(sst_files), "--learned", str(out),
                     "--no-perplexity", "--quiet", "--output", str(report), *extra]) == 0
        return json.loads(report.read_text())

    fp32 = evaluate()
    assert fp32["computed_with"]["dtype"] == "float32" and fp32["accuracy"] == scores["test_accuracy"]
    assert evaluate("--dtype", "auto")["computed_with"]["dtype"] == "bfloat16"


def test_a_checkpoint_resumes_only_in_its_own_dtype(bf16_cpu, train_args, tmp_path, monkeypatch, capsys):
    out = str(tmp_path / "run")
    assert main(train_args + ["--steps", "2", "--output", out, "--no-test-eval"]) == 0  # auto: bf16 here
    monkeypatch.setenv("RLPROMPT_INTERP_CPU_BF16", "0")  # the run moves to a CPU without bf16
    assert main(train_args + ["--steps", "4", "--output", out, "--no-test-eval", "--resume"]) == 2
    error = capsys.readouterr().err
    assert "dtype 'bfloat16' there, 'float32' here (pass --dtype bfloat16)" in error
    assert main(train_args + ["--steps", "4", "--output", out, "--no-test-eval", "--resume",
                              "--dtype", "bfloat16"]) == 0
    assert LearnedPrompt.load(out).provenance["computed_with"]["dtype"] == "bfloat16"
