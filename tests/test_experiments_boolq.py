"""experiments/boolq_soft_vs_pez.py end to end: tiny T5 task LM, tiny GPT-2 scorer, two steps,
a BoolQ-like FewGLUE file written here; checks the files it writes and that cells resume."""

import json

import pytest
from conftest import load_experiment

from rlprompt_interp.agents import continuous

PASSAGES = ["the movie was great fun and the actors were good", "the film was awful and the plot was boring",
            "this story is about love and the world", "the review of the movie was very negative",
            "it was a beautiful film with funny actors", "the sports story was really sad and too long"]
QUESTIONS = ["is the movie good", "is the film fun", "is it a love story", "is the review positive",
             "is the film funny", "is the story sad"]


@pytest.fixture
def boolq_dir(tmp_path):
    """32 examples in FewGLUE's layout (BoolQ/train.jsonl, boolean labels): split 16 / 8 / 8."""
    folder = tmp_path / "fewglue" / "BoolQ"
    folder.mkdir(parents=True)
    rows = [{"question": QUESTIONS[i % 6], "passage": PASSAGES[(i * 5) % 6], "idx": i, "label": bool(i % 2)}
            for i in range(32)]
    (folder / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return tmp_path / "fewglue"


class CountTrainingSteps:
    """Wraps the training loop's forward pass (scoring on dev/test goes through evaluation instead)."""

    def __init__(self, monkeypatch):
        self.calls, self.original = 0, continuous.soft_prompt_logits
        monkeypatch.setattr(continuous, "soft_prompt_logits", self)

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.original(*args, **kwargs)


class Killed(Exception):
    pass


@pytest.mark.usefixtures("single_thread")
def test_boolq_soft_vs_pez_end_to_end_and_resume(boolq_dir, tmp_path, monkeypatch):
    module = load_experiment("boolq_soft_vs_pez")
    out = tmp_path / "out"
    flags = ["--quick", "--model", "tiny-t5", "--scorer", "tiny-gpt2", "--data-dir", str(boolq_dir),
             "--lengths", "2", "3", "--seeds", "0", "--steps", "2", "--batch-size", "4", "--eval-every", "1",
             "--eval-batch-size", "8", "--pez-lr-scale", "0.3", "--output", str(out)]
    cells = out / "cells"
    killed_cell = cells / "method=pez,length=3,seed=0"

    # 1. the last trained cell is killed right after its step-1 checkpoint is written
    real_save = continuous.save_checkpoint

    def save_then_die(path, *args, **kwargs):
        real_save(path, *args, **kwargs)
        if path.parent.parent == killed_cell and args[3].step == 1:
            raise Killed

    monkeypatch.setattr(continuous, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        module.main(flags)
    monkeypatch.setattr(continuous, "save_checkpoint", real_save)
    done = {name: (cells / name / "result.json").stat().st_mtime_ns
            for name in ("method=soft-prompt,length=2,seed=0", "method=soft-prompt,length=3,seed=0",
                         "method=pez,length=2,seed=0")}
    assert not (killed_cell / "result.json").exists() and (killed_cell / "train" / "checkpoint.pt").is_file()

    # 2. re-run: finished cells read back, the killed one trains only its missing step, the rest run
    counter = CountTrainingSteps(monkeypatch)
    assert module.main(flags) == 0
    assert counter.calls == 1
    assert {name: (cells / name / "result.json").stat().st_mtime_ns for name in done} == done
    resumed = json.loads((killed_cell / "result.json").read_text())
    assert resumed["scores"]["steps_run"] == 2

    results = json.loads((out / "results.json").read_text())
    records = {(r["cell"]["method"], r["cell"]["length"]): r for r in results["records"]}
    assert set(records) == {("soft-prompt", 2), ("soft-prompt", 3), ("pez", 2), ("pez", 3), ("natural", 2),
                            ("natural", 3), ("no-prompt", 0)}
    assert results["config"]["model"] == "tiny-t5" and results["config"]["pez_lr_scale"] == 0.3
    for key, record in records.items():
        assert record["eval_examples"] == 8 and 0.0 <= record["test_accuracy"] <= 1.0
        if key[0] == "no-prompt":
            assert record["prompt_perplexity"] is None
            continue
        # perplexity and its log come from one measurement
        assert record["prompt_perplexity"] == pytest.approx(2.718281828 ** record["prompt_log_perplexity"])
        assert record["prompt_perplexity"] > 1.0
    for length in (2, 3):
        soft, pez = records[("soft-prompt", length)], records[("pez", length)]
        assert len(soft["readout_token_ids"]) == length and len(pez["readout_token_ids"]) == length
        assert 0.0 <= soft["unembedded_test_accuracy"] <= 1.0 and "unembedded_test_accuracy" not in pez
        assert pez["readout"] == pez["prompt"]  # PEZ's prompt is its own readout
        for record in (soft, pez):  # the step-0 dev evaluation logged the initial readout
            assert isinstance(record["initial_readout"], str)
            assert record["readout_changed"] == (record["initial_readout"] != record["readout"])
    assert records[("natural", 2)]["readout"] == module.NATURAL_PROMPTS[5]
    summary = {(row["method"], row["length"]): row for row in results["summary"]}
    assert summary[("pez", 3)]["paper_perplexity"] is None and summary[("no-prompt", 0)]["paper_accuracy"] == 0.38

    markdown = (out / "results.md").read_text()
    rows = [line for line in markdown.splitlines() if line.startswith("| ")][1:]
    assert [row.split(" | ")[0:2] for row in rows] == [["| soft-prompt", "2"], ["| soft-prompt", "3"], ["| pez", "2"],
                                                       ["| pez", "3"], ["| natural", "2"], ["| natural", "3"],
                                                       ["| no-prompt", "-"]]
    assert "8 test" in markdown and "log-ppl" in markdown and "2.82 / 6.12 / 5.15" in markdown
    unchanged = [key for key, record in records.items() if record.get("readout_changed") is False]
    assert ("still the random initial tokens" in markdown) == bool(unchanged)
    assert "causal" not in markdown  # tiny-t5 reads the answer at the first decoder step, as the paper does
    assert (out / "boolq_soft_vs_pez.png").stat().st_size > 0

    # 3. a finished cell whose result.json is lost is read back from its checkpoint, not retrained
    lost = cells / "method=soft-prompt,length=3,seed=0"
    checkpoint_time = (lost / "train" / "checkpoint.pt").stat().st_mtime_ns
    before = json.loads((lost / "result.json").read_text())
    (lost / "result.json").unlink()
    others = {p: p.stat().st_mtime_ns for p in cells.glob("*/result.json")}
    counter.calls = 0
    assert module.main(flags) == 0
    assert counter.calls == 0
    assert (lost / "train" / "checkpoint.pt").stat().st_mtime_ns == checkpoint_time
    assert {p: p.stat().st_mtime_ns for p in others} == others
    after = json.loads((lost / "result.json").read_text())
    assert after["readout"] == before["readout"] and after["test_accuracy"] == before["test_accuracy"]

    # 4. other settings into the same folder are refused rather than mixed
    with pytest.raises(Exception, match="other settings"):
        module.main([*flags, "--steps", "3"])


def test_full_mode_is_the_papers_setting_and_flags_override_it():
    module = load_experiment("boolq_soft_vs_pez")
    args = module.parse_args(["--full", "--pez-lr-scale", "0.3", "--seeds", "0"])
    assert (args.model, args.scorer, args.data_dir) == ("t5-small", "gpt2-xl", module.HUB)
    assert args.lengths == [5, 20, 100] and args.steps >= 1000 and args.seeds == [0]
    assert module.build_agent(args, "pez").config.lr_scale == 0.3
    assert module.build_agent(args, "soft-prompt").config.lr_scale == 0.1  # the agent's own default
    assert module.build_agent(args, "soft-prompt").config.projection_metric == args.unembed_metric
    assert module.natural_prompt(100) == module.NATURAL_PROMPTS[100]
    assert module.natural_prompt(12) == module.NATURAL_PROMPTS[5]  # the nearest nominal length
    with pytest.raises(SystemExit):
        module.parse_args(["--lengths", "0"])
