"""experiments/sst2_ppl_sweep.py end to end on tiny models: the files it writes, and resume after a kill."""

import json
import math
import re

import pytest

from conftest import empty_folder, load_experiment, result_times, run_until_killed
from rlprompt_interp.prompts import LearnedPrompt


def tiny_args(data_dir, output):
    return ["--policy-model", "tiny-gpt2", "--task-model", "tiny-gpt2", "--scorer", "tiny-gpt2", "--steps", "2",
            "--eval-every", "1", "--lengths", "2", "--seeds", "0", "--arms", "reward=gap=1", "reward=perplexity=1",
            "reward=gap=1 fluent_top_k=5", "reward=gap=1,log-perplexity=0.5 prior_weight=1",
            "reward=gap=1 prior_weight=1 entropy=tsallis", "--prompts-per-step", "2", "--examples-per-step", "2", "--eval-limit", "4",
            "--condition", "the movie", "--action-space", "all", "--no-repeat", "1",
            "--data-dir", str(data_dir), "--output", str(output)]


@pytest.mark.usefixtures("single_thread")
def test_sweep_writes_table_json_plot_and_resumes_a_killed_cell(sst_files, tmp_path, monkeypatch, capsys):
    from rlprompt_interp.algorithms.trainer import SQLTrainer

    script = load_experiment("sst2_ppl_sweep")
    output = tmp_path / "sweep"
    assert script.main(tiny_args(sst_files, output)) == 0
    # one shared test pass at the end: each distinct prompt (the learned ones and three references) scored once
    scored = re.findall(r"scored (\d+) prompts on the test split", capsys.readouterr().out)
    tested = json.loads((output / "test" / "definition0.json").read_text())
    assert scored == [str(len(tested))] and 4 <= len(tested) <= 5 + 3

    results = json.loads((output / "results.json").read_text())
    assert len(results["records"]) == 5  # five arms, one length, one seed
    for record in results["records"]:
        assert 0 <= record["test_accuracy"] <= 1 and record["eval_examples"] == 4
        assert set(record["test_correct"]) <= {"0", "1"} and len(record["test_correct"]) == 4
        assert record["test_correct"].count("1") / 4 == record["test_accuracy"]
        assert record["prompt_perplexity"] > 1 and record["prompt"]
        assert [point["step"] for point in record["dev_curve"]] == [1, 2]
        assert LearnedPrompt.load(record["learned_prompt"]).text == record["prompt"]  # the folder eval reads
        assert record["eval_computed_with"]["dtype"] == "float32" and record["train_computed_with"]["device"] == "cpu"
    policies = [LearnedPrompt.load(r["learned_prompt"]).provenance["config"]["policy"] for r in results["records"]]
    assert [(p["prior_weight"], p["entropy"]) for p in policies] == [
        (0.0, "shannon"), (0.0, "shannon"), (0.0, "shannon"), (1.0, "shannon"), (1.0, "tsallis")]
    summary = results["summary"]
    assert [(row["acc"], row["ppl"], row["log_ppl"], row["prior"], row["fluent"], row["tsallis"])
            for row in summary] == [(1.0, 0.0, 0.0, 0.0, 0, 0), (0.0, 1.0, 0.0, 0.0, 0, 0), (1.0, 0.0, 0.0, 0.0, 5, 0),
                                    (1.0, 0.0, 0.5, 1.0, 0, 0), (1.0, 0.0, 0.0, 1.0, 0, 1)]
    # every arm against acc=1 (uniform start), with the bootstrap's intervals
    base = summary[0]
    assert base["is_accuracy_only"] and base["vs_accuracy_only"] is None
    for row in summary:
        accuracy = row["intervals"]["accuracy"]
        assert accuracy["low"] <= row["test_accuracy_mean"] == accuracy["estimate"] <= accuracy["high"]
        assert row["intervals"]["perplexity"]["estimate"] == pytest.approx(math.exp(row["log_perplexity_mean"]))
        assert row["accuracy_only_arm"] == "gap"
    for row in summary[1:]:
        difference, ratio = row["vs_accuracy_only"]["accuracy_difference"], row["vs_accuracy_only"]["perplexity_ratio"]
        assert difference["estimate"] == pytest.approx(100 * (row["test_accuracy_mean"] - base["test_accuracy_mean"]))
        assert difference["low"] <= difference["estimate"] <= difference["high"]
        # one seed per arm: the perplexity ratio is exact
        assert ratio["low"] == ratio["high"] == pytest.approx(ratio["estimate"])
        assert ratio["estimate"] == pytest.approx(math.exp(base["log_perplexity_mean"] - row["log_perplexity_mean"]))
    assert len(results["tradeoffs"]) == 4 and all(" points, perplexity ratio " in line for line in results["tradeoffs"])
    table = (output / "results.md").read_text()
    assert "| 2 | gap |" in table and "| 2 | ppl |" in table and "| 2 | gap, fluent top-5 |" in table
    assert "| 2 | gap + 0.5 log-ppl, LM prior 1 |" in table and "| 2 | gap, LM prior 1, Tsallis |" in table
    assert "| Δ accuracy vs accuracy-only (95% CI, points) | perplexity ratio accuracy-only / arm (95% CI) |" in table
    assert table.count(" | baseline | baseline | ") == 1
    refs = results["references"]["this sweep's task definition"]["prompts"]
    assert refs[0]["prompt"] == "" and all(0 <= r["test_accuracy"] <= 1 for r in refs)
    assert (output / "sst2_ppl_sweep.png").stat().st_size > 1000

    # Kill the (1, 0) cell after one of its two steps: its folder keeps a step-1 checkpoint, no result.
    killed = output / "cells" / "length=2,acc=0,ppl=1,log_ppl=0,prior=0,fluent=0,scale=0,tsallis=0,seed=0"
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
    assert all(int(n) <= 1 for n in re.findall(r"scored (\d+) prompts", log))  # at most the resumed cell's prompt
    again = json.loads((output / "test" / "definition0.json").read_text())
    assert {key: again[key] for key in tested} == tested
    assert log.count(": done, read back") == 4
    assert result_times(output, skip=killed) == finished
    record = json.loads((killed / "result.json").read_text())
    assert [point["step"] for point in record["dev_curve"]] == [1, 2]


def test_sweep_refuses_changed_settings_in_the_same_folder(sst_files, tmp_path):
    from rlprompt_interp.sweeps import SweepConfigError

    script = load_experiment("sst2_ppl_sweep")
    args = tiny_args(sst_files, tmp_path / "sweep")
    args[args.index("--arms") + 1:args.index("--prompts-per-step")] = ["reward=gap=1"]
    script.main(args)
    args[args.index("--steps") + 1] = "3"
    with pytest.raises(SweepConfigError, match="steps: 2 -> 3"):
        script.main(args)


@pytest.mark.parametrize("arm, message", [
    ("prior_weight=1", "no reward term"),
    ("reward=gap=1 beta=2", "bad arm term 'beta=2'"),
    ("reward=gap=1 prior_weight=-1", "prior_weight must be at least 0"),
    ("reward=fluency=1", "unknown reward 'fluency'"),
    ("prior=1", "no reward term"),  # the older spelling: the same checks
    ("acc=1,beta=2", "bad arm term"),
    ("acc=1,tsallis=2", "tsallis is on (1) or off (0)"),
])
def test_bad_arms_are_a_usage_error(capsys, arm, message):
    script = load_experiment("sst2_ppl_sweep")
    with pytest.raises(SystemExit):
        script.parse_args(["--arms", arm])
    assert message in capsys.readouterr().err


def test_the_older_arm_spelling_reads_the_same_arm_with_a_warning():
    from rlprompt_interp.notices import RLPromptWarning

    script = load_experiment("sst2_ppl_sweep")
    with pytest.warns(RLPromptWarning, match="write 'reward=gap=1,log-perplexity=2 prior_weight=1 entropy=tsallis'"):
        old = script.parse_arm("acc=1,log-ppl=2,prior=1,tsallis=1")
    assert old == script.parse_arm("reward=gap=1,log-perplexity=2 prior_weight=1 entropy=tsallis") == {
        "acc": 1.0, "ppl": 0.0, "log_ppl": 2.0, "prior": 1.0, "fluent": 0, "scale": 0.0, "tsallis": 1}
    assert script.parse_arm("reward=gap=1 shaped_range=[0,4]")["scale"] == 4.0
