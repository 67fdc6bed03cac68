"""experiments/waywardness.py end to end on tiny-gpt2: files, shared cells, and resume of one cell."""

import json

import pytest

from conftest import load_experiment

pytestmark = pytest.mark.usefixtures("single_thread")

NATURAL, PILE = "Write a valid question.", "How to choose good wines?"


def flags(data_dir, targets_dir, output, steps=2):
    return ["--quick", "--model", "tiny-gpt2", "--data-dir", str(data_dir), "--targets-dir", str(targets_dir),
            "--output", str(output), "--steps", str(steps), "--batch-size", "4", "--eval-every", "1",
            "--eval-limit", "6", "--lr", "0.1", "--tasks", "sst-2", "--targets", "natural_prompts:write", "pile:wines",
            "--sweep-target", "natural_prompts:write", "--gammas", "0", "0.01", "0.03", "--threads", "1"]


@pytest.fixture
def targets_dir(tmp_path):
    folder = tmp_path / "targets"
    folder.mkdir()
    (folder / "natural_prompts.json").write_text(json.dumps({"write": NATURAL, "other": "Answer the question."}))
    (folder / "pile.json").write_text(json.dumps({"wines": PILE}))
    return folder


def test_waywardness_script_writes_tables_and_resumes_a_cell(sst_files, targets_dir, tmp_path, monkeypatch):
    from rlprompt_interp.agents.wayward import WaywardAgent
    from rlprompt_interp.models import load_lm
    from rlprompt_interp.sweeps import SweepConfigError
    from rlprompt_interp.tasks import get_task

    module = load_experiment("waywardness")
    out = tmp_path / "run"
    argv = flags(sst_files, targets_dir, out)
    assert module.main(argv) == 0

    results = json.loads((out / "results.json").read_text())
    cells = [(r["cell"]["target"], r["cell"]["gamma"]) for r in results["records"]]
    # the sweep's γ = 0 and 0.01 cells are the main table's: five cells, none trained twice
    assert sorted(cells) == sorted([("natural_prompts:write", 0.0), ("natural_prompts:write", 0.01),
                                    ("natural_prompts:write", 0.03), ("pile:wines", 0.0), ("pile:wines", 0.01)])
    assert len(list((out / "cells").iterdir())) == 5
    tokenizer = load_lm("tiny-gpt2").tokenizer
    for record in results["records"]:
        target = NATURAL if record["cell"]["target"] == "natural_prompts:write" else PILE
        assert record["target_text"] == target
        assert record["target_tokens"] == len(tokenizer.encode(target, add_special_tokens=False))
        assert len(record["token_ids"]) == record["target_tokens"]  # the prompt has the target's length
        assert record["init_f1_euclidean"] == 1.0  # E(p_d) projects back onto p_d under Euclidean distance
        assert record["projection_dot"] == record["prompt"]  # the agent's own text is the dot projection
        for metric in ("dot", "euclidean", "cosine"):
            assert 0.0 <= record[f"f1_{metric}"] <= 1.0 and isinstance(record[f"projection_{metric}"], str)
        assert record["eval_examples"] == 6 and 0.0 <= record["test_accuracy"] <= 1.0
    assert [row["gamma"] for row in results["sweep"]] == [0.0, 0.01, 0.03]
    by_cell = {(r["cell"]["target"], r["cell"]["gamma"]): r for r in results["records"]}
    assert [row["target"] for row in results["main"]] == ["natural_prompts:write", "pile:wines"]
    for pair in results["pairs"]:
        free, held = by_cell[(pair["cell"]["target"], 0.0)], by_cell[(pair["cell"]["target"], 0.01)]
        assert pair["drop"] == pytest.approx(free["test_accuracy"] - held["test_accuracy"])
        assert pair["f1_dot"] == held["f1_dot"] and pair["free_f1_dot"] == free["f1_dot"]
    assert {row["source"] for row in results["main_by_source"]} == {"natural_prompts", "pile"}

    table = (out / "results.md").read_text()
    assert "**sst-2, target `natural_prompts:write`" in table  # the γ = 0.01 vs γ = 0 headline
    assert "| sst-2 | natural_prompts:write |" in table and "| sst-2 | pile:wines |" in table
    assert "\n| 0.03 |" in table and "92.4" in table and "99.0" in table  # the paper's figures stand beside
    assert (out / "waywardness.png").stat().st_size > 1000

    # Interrupt one cell after its first step: its result goes, a one-step checkpoint stays.
    folder = next(p for p in (out / "cells").iterdir() if "pile" in p.name and "gamma=0.01" in p.name)
    (folder / "result.json").unlink()
    for path in sorted((folder / "train").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    agent = module.build_agent(module.parse_args(argv), PILE, 0.01)
    agent.fit(get_task("sst-2", data_dir=str(sst_files)), prompt_length=0, steps=1, seed=0,
              output_dir=folder / "train")
    others = {p: p.stat().st_mtime_ns for p in (out / "cells").glob("*/result.json")}
    steps_trained = []
    penalty = WaywardAgent.penalty
    monkeypatch.setattr(WaywardAgent, "penalty",
                        lambda self, *a: steps_trained.append(1) or penalty(self, *a))
    assert module.main(argv) == 0
    assert len(steps_trained) == 1  # only step 2 ran: the cell resumed its checkpoint
    assert {p: p.stat().st_mtime_ns for p in others} == others  # finished cells were read back
    resumed = json.loads((folder / "result.json").read_text())
    assert resumed["scores"]["steps_run"] == 2

    with pytest.raises(SweepConfigError, match="steps"):  # other settings never mix into this folder
        module.main(flags(sst_files, targets_dir, out, steps=3))
