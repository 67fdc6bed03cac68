"""experiments/sst2_ppl_sweep.py end to end on tiny models: the files it writes, and resume after a kill."""

import json

import pytest

from conftest import empty_folder, load_experiment, result_times, run_until_killed
from rlprompt_interp.prompts import LearnedPrompt


def tiny_args(data_dir, output):
    return ["--policy-model", "tiny-gpt2", "--task-model", "tiny-gpt2", "--scorer", "tiny-gpt2", "--steps", "2",
            "--eval-every", "1", "--lengths", "2", "--seeds", "0", "--coefficients", "0,1", "1,0",
            "--fluent-top-k", "5", "--prompts-per-step", "2", "--examples-per-step", "2", "--eval-limit", "4",
            "--data-dir", str(data_dir), "--output", str(output)]


@pytest.mark.usefixtures("single_thread")
def test_sweep_writes_table_json_plot_and_resumes_a_killed_cell(sst_files, tmp_path, monkeypatch, capsys):
    from rlprompt_interp.algorithms.trainer import SQLTrainer

    script = load_experiment("sst2_ppl_sweep")
    output = tmp_path / "sweep"
    assert script.main(tiny_args(sst_files, output)) == 0

    results = json.loads((output / "results.json").read_text())
    assert len(results["records"]) == 3  # two coefficient pairs and the fluent arm, one length, one seed
    for record in results["records"]:
        assert 0 <= record["test_accuracy"] <= 1 and record["eval_examples"] == 4
        assert record["prompt_perplexity"] > 1 and record["prompt"]
        assert [point["step"] for point in record["dev_curve"]] == [1, 2]
        assert LearnedPrompt.load(record["learned_prompt"]).text == record["prompt"]  # the folder eval reads
    assert [(row["ppl_coef"], row["acc_coef"], row["fluent_top_k"]) for row in results["summary"]] == [
        (0.0, 1.0, 0), (1.0, 0.0, 0), (0.0, 1.0, 5)]
    table = (output / "results.md").read_text()
    assert "| 2 | 0 | 1 | - |" in table and "| 2 | 1 | 0 | - |" in table and "fluent top-5" in table
    assert (output / "sst2_ppl_sweep.png").stat().st_size > 1000

    # Kill the (1, 0) cell after one of its two steps: its folder keeps a step-1 checkpoint, no result.
    killed = output / "cells" / "length=2,ppl_coef=1,acc_coef=0,fluent_top_k=0,seed=0"
    finished = result_times(output, skip=killed)
    empty_folder(killed)
    train = SQLTrainer.train

    def killed_after_one_step(self, **kwargs):
        train(self, stop_after=1, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(SQLTrainer, "train", killed_after_one_step)
    run_until_killed(script.main, tiny_args(sst_files, output), killed)

    monkeypatch.setattr(SQLTrainer, "train", train)
    capsys.readouterr()
    assert script.main(tiny_args(sst_files, output)) == 0
    log = capsys.readouterr().out
    assert "at step 1" in log  # the killed cell resumed from its checkpoint, not from step 0
    assert log.count(": done, read back") == 2
    assert result_times(output, skip=killed) == finished
    record = json.loads((killed / "result.json").read_text())
    assert [point["step"] for point in record["dev_curve"]] == [1, 2]


def test_sweep_refuses_changed_settings_in_the_same_folder(sst_files, tmp_path):
    from rlprompt_interp.sweeps import SweepConfigError

    script = load_experiment("sst2_ppl_sweep")
    args = tiny_args(sst_files, tmp_path / "sweep")
    args[args.index("--coefficients") + 1:args.index("--fluent-top-k")] = ["0,1"]
    script.main(args)
    args[args.index("--steps") + 1] = "3"
    with pytest.raises(SweepConfigError, match="steps: 2 -> 3"):
        script.main(args)


def test_bad_coefficients_are_a_usage_error(capsys):
    script = load_experiment("sst2_ppl_sweep")
    with pytest.raises(SystemExit):
        script.parse_args(["--coefficients", "0,0"])
    assert "not both zero" in capsys.readouterr().err
