"""experiments/five_tasks.py end to end on a tiny model: training cells, one shared test pass, the table."""

import json

import pytest

from conftest import load_experiment


def tiny_args(data_dir, output, seeds=("0",)):
    return ["--model", "tiny-gpt2", "--scorer", "tiny-gpt2", "--tasks", "sst-2", "--seeds", *seeds, "--steps", "4",
            "--soft-steps", "2", "--soft-batch-size", "2", "--soft-eval-every", "1", "--data-dir", str(data_dir),
            "--output", str(output)]


@pytest.mark.usefixtures("single_thread")
def test_five_tasks_trains_scores_once_and_adds_seeds(sst_files, tmp_path, capsys):
    script = load_experiment("five_tasks")
    output = tmp_path / "five"
    assert script.main(tiny_args(sst_files, output)) == 0
    results = json.loads((output / "results.json").read_text())
    assert [(r["cell"]["method"], r["cell"]["seed"]) for r in results["records"]] == [("rlprompt", 0), ("soft-prompt", 0)]
    (row,) = results["rows"]
    assert row["task"] == "sst-2" and row["examples"] == 6 and 0 <= row["no_prompt"] <= 1 and 0 <= row["hand"] <= 1
    (run,) = row["rlprompt"]
    assert run["prompt"] and 0 <= run["test_accuracy"] <= 1 and run["prompt_perplexity"] > 1
    assert run["kept_from"] in ("dev", "sampled") and 0 <= run["dev_best_accuracy"] <= 1
    scores = json.loads((output / "test" / "sst-2.json").read_text())
    assert scores["no prompt"]["text"] == "" and scores["hand"]["text"] == script.HAND_TEMPLATES["sst-2"]
    assert "| sst-2 | 6 |" in (output / "results.md").read_text()

    capsys.readouterr()
    assert script.main(tiny_args(sst_files, output, seeds=("0", "1"))) == 0  # one seed more: only its runs and prompts
    out = capsys.readouterr().out  # the soft prompt stays at --soft-seeds (quick mode: seed 0)
    assert out.count(": done, read back") == 2 and out.count(": running") == 1
    again = json.loads((output / "test" / "sst-2.json").read_text())
    assert {k: v for k, v in again.items() if k in scores} == scores  # the first seed's scores were kept, not redone
    (row,) = json.loads((output / "results.json").read_text())["rows"]
    assert len(row["rlprompt"]) == 2 and len(row["soft-prompt"]) == 1


@pytest.mark.usefixtures("single_thread")
def test_full_mode_runs_rlprompts_table_on_a_masked_task_model(sst_files, tmp_path):
    """--full's code path (the rlprompt-roberta recipe, RLPrompt's cloze template and verbalizers) on tiny models."""
    script = load_experiment("five_tasks")
    output = tmp_path / "full"
    assert script.main(["--full", "--model", "tiny-roberta", "--policy-model", "tiny-gpt2", "--scorer", "tiny-gpt2",
                        "--tasks", "sst-2", "--seeds", "0", "--steps", "2", "--data-dir", str(sst_files),
                        "--output", str(output)]) == 0
    results = json.loads((output / "results.json").read_text())
    assert [(r["cell"]["method"], r["cell"]["seed"]) for r in results["records"]] == [("rlprompt", 0)]
    learned = json.loads((output / "cells" / "seed=0,method=rlprompt,task=sst-2" / "train" / "prompt.json").read_text())
    provenance = learned["provenance"]
    assert provenance["template"] == "{sentence} {prompt} {mask} ." and provenance["verbalizers"] == [" terrible", " great"]
    assert provenance["task_model"] == "tiny-roberta" and provenance["policy_model"] == "tiny-gpt2"
    assert provenance["config"]["sql"]["prompts_per_step"] == 16 and provenance["config"]["policy"]["top_k"] == 256
    (row,) = results["rows"]
    assert row["soft-prompt"] == [] and 0 <= row["rlprompt"][0]["test_accuracy"] <= 1
