"""experiments/sst2_rl_comparison.py end to end on tiny models: time-limited runs of the three agents."""

import json

import pytest

from conftest import load_experiment


def tiny_args(data_dir, output, minutes="0.002"):
    return ["--policy-model", "tiny-gpt2", "--task-model", "tiny-gpt2", "--scorer", "tiny-gpt2", "--minutes", minutes,
            "--max-steps", "40", "--eval-every", "2", "--prompt-length", "2", "--seeds", "0", "--ppl-coefs", "1",
            "--prompts-per-step", "2", "--examples-per-step", "2", "--eval-limit", "4", "--data-dir", str(data_dir),
            "--output", str(output)]


@pytest.mark.usefixtures("single_thread")
def test_comparison_writes_table_json_plots_within_the_time_budget(sst_files, tmp_path, capsys):
    script = load_experiment("sst2_rl_comparison")
    output = tmp_path / "comparison"
    assert script.main(tiny_args(sst_files, output)) == 0

    results = json.loads((output / "results.json").read_text())
    assert [(r["cell"]["agent"], r["cell"]["ppl_coef"]) for r in results["records"]] == [
        ("sql", 1.0), ("grpo", 1.0), ("rloo", 1.0)]
    for record in results["records"]:
        assert 1 <= record["steps"] < 40  # the 0.12-second budget stopped every agent long before --max-steps
        assert 0 <= record["test_accuracy"] <= 1 and record["eval_examples"] == 4 and record["prompt"]
        assert record["dev_accuracy_by_minute"]  # the greedy prompt was scored when the time ran out
        assert record["prompt_perplexity"] > 1
    table = (output / "results.md").read_text()
    assert "| sql | 1 |" in table and "| grpo | 1 |" in table and "| rloo | 1 |" in table
    for plot in ("sst2_rl_comparison.png", "learning_curves.png"):
        assert (output / plot).stat().st_size > 1000

    capsys.readouterr()
    assert script.main(tiny_args(sst_files, output)) == 0  # a second run reads every finished run back
    assert capsys.readouterr().out.count(": done, read back") == 3


def test_sql_resumes_with_the_time_it_had_spent(sst_files, tmp_path):
    from rlprompt_interp.tasks import get_task

    script = load_experiment("sst2_rl_comparison")
    args = script.parse_args(tiny_args(sst_files, tmp_path / "unused", minutes="10"))
    agent = script.make_agent(args, {"agent": "sql", "ppl_coef": 0.0, "seed": 0})
    task = get_task("sst-2", data_dir=str(sst_files))
    first = agent.fit(task, prompt_length=2, steps=3, seed=0, output_dir=tmp_path / "run")
    assert first.curve[-1]["step"] == 3
    # a budget below the time already spent (half of it: t / 60 * 60 can round above t): a resumed run trains no further
    agent.config = agent.config.replace(max_minutes=first.curve[-1]["time"] / 120)
    again = agent.fit(task, prompt_length=2, steps=40, seed=0, output_dir=tmp_path / "run", resume=True)
    assert again.curve == first.curve and again.text == first.text


def test_report_to_reaches_every_run(sst_files, tmp_path, monkeypatch):
    """`--report-to` follows each run in the tracker, as in every experiment script (it was parsed, then dropped)."""
    script = load_experiment("sst2_rl_comparison")
    seen = []

    def first_run_only(*args, report_to, config, **kwargs):
        seen.append((report_to, config["agent"]))
        raise KeyboardInterrupt

    monkeypatch.setattr(script, "train_and_evaluate", first_run_only)
    with pytest.raises(KeyboardInterrupt):
        script.main(tiny_args(sst_files, tmp_path / "out") + ["--report-to", "tensorboard"])
    assert seen == [("tensorboard", "sql")]
