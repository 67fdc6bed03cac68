"""experiments/superglue_prompt_analysis.py end to end on tiny-gpt2: files, analysis from the folder, resume."""

import json

import pytest

from conftest import empty_folder, load_experiment, result_times, run_until_killed


def write_fewglue(root, n=32):
    """RTE (string labels) and WSC (spans nested under ``target``, boolean labels) in FewGLUE's layout."""
    rte = [{"premise": f"the movie number {i} was good", "hypothesis": f"movie {i} is good", "idx": i,
            "label": "entailment" if i % 2 else "not_entailment"} for i in range(n)]
    wsc = [{"text": f"the actors saw the film {i} and it was good", "idx": i, "label": i % 3 == 0,
            "target": {"span1_text": "the film", "span2_text": "it", "span1_index": 3, "span2_index": 6}}
           for i in range(n)]
    for folder, rows in (("RTE", rte), ("WSC", wsc)):
        (root / folder).mkdir(parents=True)
        (root / folder / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return root


def tiny_args(data_dir, output):
    return ["--model", "tiny-gpt2", "--tasks", "rte", "wsc", "--seeds", "0", "1", "--steps", "2", "--eval-every", "1",
            "--prompt-length", "5", "--batch-size", "4", "--init-text", "rte=is it true", "--init-text",
            "wsc=yes or no", "--data-dir", str(data_dir), "--output", str(output)]


@pytest.mark.usefixtures("single_thread")
def test_analysis_writes_tables_plots_and_resumes_a_killed_cell(tmp_path, monkeypatch, capsys):
    import rlprompt_interp.models as models
    from rlprompt_interp.agents import continuous

    script = load_experiment("superglue_prompt_analysis")
    data, output = write_fewglue(tmp_path / "fewglue"), tmp_path / "run"
    assert script.main(tiny_args(data, output)) == 0

    results = json.loads((output / "results.json").read_text())
    records, analysis, transfer = results["records"], results["analysis"], results["transfer"]
    assert [(r["cell"]["task"], r["cell"]["seed"]) for r in records] == [("rte", 0), ("rte", 1), ("wsc", 0), ("wsc", 1)]
    for record in records:
        readout = record["readout"]
        assert len(readout) == 5 and all(len(row["tokens"]) == 3 for row in readout)
        assert all(row["scores"][0] >= row["scores"][1] >= row["scores"][2] for row in readout)  # cosine, best first
        # "is it true" is 3 tokens, "yes or no" 4: they fill the end of the 5 positions, random tokens before
        starts = [row["init_token"] for row in readout]
        assert starts[:5 - record["init_text_tokens"]] == [None] * (5 - record["init_text_tokens"])
        assert "".join(starts[5 - record["init_text_tokens"]:]) == record["init_text"]
        # each prompt's own-task test accuracy is the diagonal of the transfer accuracies
        row = transfer["prompts"].index(f"{record['cell']['task']} s{record['cell']['seed']}")
        assert transfer["accuracy"][row][transfer["tasks"].index(record["cell"]["task"])] == record["test_accuracy"]
    assert transfer["examples"] == {"rte": 8, "wsc": 8}
    # transfer = accuracy − no-prompt accuracy, per prompt; task level = mean over the two seeds
    delta = [[a - b for a, b in zip(row, transfer["baseline"])] for row in transfer["accuracy"]]
    assert [pytest.approx(row) for row in delta] == analysis["transfer_prompts"]
    assert analysis["transfer_tasks"][0] == pytest.approx([(x + y) / 2 for x, y in zip(delta[0], delta[1])])
    # task-level similarity diagonal: the distance between the two seeds of a task
    sim = analysis["similarity_prompts"]
    assert analysis["similarity_tasks"][0][0] == pytest.approx(sim[0][1])
    assert analysis["similarity_tasks"][0][1] == pytest.approx((sim[0][2] + sim[0][3] + sim[1][2] + sim[1][3]) / 4)
    assert analysis["stochasticity"]["rte"]["n"] == 2
    # the seeds of a task start from one prompt (same dev accuracy at step 0) and end apart (batch order)
    assert records[0]["scores"]["initial_dev_accuracy"] == records[1]["scores"]["initial_dev_accuracy"]
    assert sim[0][1] > 0 and sim[2][3] > 0
    assert analysis["stochasticity"]["rte"]["mean_pairwise_distance"] == pytest.approx(sim[0][1])
    assert analysis["correlation"]["tasks_with_diagonal"]["n"] == 4
    table = (output / "results.md").read_text()
    assert "| rte s0 |" in table and "| no prompt |" in table
    assert "rte 8, wsc 8 examples" in table and "only true examples" not in table  # both classes in these tests
    test_split = script.load_tasks(["rte", "wsc"], str(data))
    assert transfer["label_counts"]["wsc"] == {"false": test_split["wsc"].load_split("test")["label"].count(0),
                                               "true": test_split["wsc"].load_split("test")["label"].count(1)}
    for name in ("prompt_map", "similarity", "similarity_prompts", "transfer"):
        assert (output / f"{name}.png").stat().st_size > 1000

    # The analysis again from the finished folder, without any model.
    (output / "results.md").unlink()

    def no_model(*args, **kwargs):
        raise AssertionError("--analyse-only loaded a model")

    monkeypatch.setattr(models, "load_lm", no_model)
    assert script.main(["--analyse-only", "--output", str(output)]) == 0
    assert (output / "results.md").read_text() == table
    monkeypatch.undo()

    # Kill cell wsc seed 1 right after its step-1 checkpoint; re-running resumes it at step 1.
    killed = output / "cells" / "task=wsc,seed=1"
    finished = result_times(output, skip=killed)
    empty_folder(killed)
    save = continuous.save_checkpoint

    def save_then_die(path, prompt, optimizer, generator, state, *rest):
        save(path, prompt, optimizer, generator, state, *rest)
        if state.step == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(continuous, "save_checkpoint", save_then_die)
    run_until_killed(script.main, tiny_args(data, output), killed)
    monkeypatch.setattr(continuous, "save_checkpoint", save)

    steps = []
    logits = continuous.soft_prompt_logits  # the training step's forward pass (evaluation has its own import)
    monkeypatch.setattr(continuous, "soft_prompt_logits", lambda *a, **k: steps.append(1) or logits(*a, **k))
    capsys.readouterr()
    assert script.main(tiny_args(data, output)) == 0
    log = capsys.readouterr().out
    assert len(steps) == 1  # only step 2 of the killed cell was trained again
    assert log.count(": done, read back") == 3 and "task=wsc,seed=1: running (resuming)" in log
    assert result_times(output, skip=killed) == finished
    curve = json.loads((killed / "train" / "prompt.json").read_text())["curve"]
    assert [point["step"] for point in curve if "dev_accuracy" in point] == [0, 1, 2]


def test_settings_errors_name_the_fix(tmp_path):
    script = load_experiment("superglue_prompt_analysis")
    data = write_fewglue(tmp_path / "fewglue")
    args = tiny_args(data, tmp_path / "run")
    args[args.index("--prompt-length") + 1] = "3"  # "yes or no" is 4 tiny-gpt2 tokens
    with pytest.raises(script.ExperimentError, match=r"\{'wsc': 4\} tokens; raise --prompt-length"):
        script.main(args)
    with pytest.raises(SystemExit):
        script.parse_args(["--tasks", "rte", "boolq"])  # no paper init text for BoolQ: --init-text is required
    with pytest.raises(script.ExperimentError, match="no finished cells|holds no sweep"):
        script.main(["--analyse-only", "--output", str(tmp_path / "empty")])


def test_every_seed_starts_from_the_same_prompt(tiny_gpt2):
    import torch

    from rlprompt_interp.agents.soft_prompt import SoftPromptAgent

    script = load_experiment("superglue_prompt_analysis")
    agent = SoftPromptAgent(model="tiny-gpt2", init="text", init_text="is it true", init_seed=script.FILL_SEED)
    starts = [agent.initial_prompt(tiny_gpt2, 6, torch.Generator().manual_seed(seed)) for seed in (0, 1)]
    assert torch.equal(starts[0], starts[1])
    table = tiny_gpt2.model.get_input_embeddings().weight
    assert torch.equal(starts[0][3:], table[tiny_gpt2.tokenizer.encode("is it true")])  # the text fills the end
    other = SoftPromptAgent(model="tiny-gpt2", init="text", init_text="yes or no", init_seed=script.FILL_SEED)
    assert torch.equal(other.initial_prompt(tiny_gpt2, 6, torch.Generator().manual_seed(5))[:2], starts[0][:2])
