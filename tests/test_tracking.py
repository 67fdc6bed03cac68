"""``--report-to``: the run followed in accelerate's trackers; TensorBoard read back from its events file."""

import sys
from pathlib import Path

import pytest
import yaml

from rlprompt_interp import tracking
from rlprompt_interp.cli import main

pytestmark = pytest.mark.usefixtures("single_thread")


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of the TensorBoard events files under ``folder``: tag -> [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found = {}
    for path in sorted(folder.rglob("events.out.tfevents.*")):
        events = EventAccumulator(str(path))
        events.Reload()
        for tag in events.Tags()["scalars"]:
            found.setdefault(tag, []).extend((e.step, e.value) for e in events.Scalars(tag))
    return found


def test_train_reports_to_tensorboard(sst_files, tmp_path):
    pytest.importorskip("tensorboard")
    out = tmp_path / "run"
    assert main(["train", "--task", "sst-2", "--data-dir", str(sst_files), "--model", "tiny-gpt2", "--prompt-length",
                 "2", "--steps", "4", "--prompts-per-step", "2", "--examples-per-step", "2", "--eval-every", "2",
                 "--mlp-width", "16", "--reward", "accuracy=1,perplexity=0.01", "--scorer", "tiny-gpt2", "--quiet",
                 "--report-to", "tensorboard", "--output", str(out)]) == 0
    logged = scalars(out / "tensorboard")
    for tag in ("reward", "accuracy", "perplexity", "entropy", "loss", "grad_norm"):
        assert [step for step, _ in logged[tag]] == [1, 2, 3, 4], tag
    assert [step for step, _ in logged["dev/accuracy"]] == [2, 4]
    assert len(logged["test/accuracy"]) == 1 and 0 <= logged["test/accuracy"][0][1] <= 1
    curve = __import__("json").loads((out / "prompt.json").read_text())["curve"]
    assert [value for _, value in logged["loss"]] == pytest.approx([row["loss"] for row in curve])
    (config_file,) = (out / "tensorboard").rglob("hparams.yml")
    config = yaml.safe_load(config_file.read_text())
    assert config["prompt_length"] == 2 and config["report_to"] == "tensorboard" and config["agent"] == "rlprompt"
    assert "wandb" not in sys.modules and "trackio" not in sys.modules  # only the chosen backend


def test_continuous_agents_and_sweep_cells_report_too(sst_files, tmp_path):
    pytest.importorskip("tensorboard")
    from rlprompt_interp.agents import get_agent
    from rlprompt_interp.models import load_lm
    from rlprompt_interp.sweeps import train_and_evaluate
    from rlprompt_interp.tasks import get_task

    task = get_task("sst-2", data_dir=str(sst_files))
    agent = get_agent("soft-prompt", model="tiny-gpt2", eval_every=2, quiet=True)
    train_and_evaluate(agent, task, tmp_path / "cell", prompt_length=2, steps=2, seed=0, eval_lm=load_lm("tiny-gpt2"),
                       report_to="tensorboard", config={"mode": "test"})
    logged = scalars(tmp_path / "cell" / "train" / "tensorboard")
    assert [step for step, _ in logged["loss"]] == [1, 2]
    assert [step for step, _ in logged["dev_accuracy"]] == [0, 2] and "test/accuracy" in logged


def test_none_imports_no_tracker(monkeypatch):
    for module in ("accelerate.tracking", "torch.utils.tensorboard"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    with tracking.track_run("none", "unused", config={"a": 1}) as tracker:
        tracker.log_row({"step": 1, "loss": 0.5})
    assert "accelerate.tracking" not in sys.modules and "torch.utils.tensorboard" not in sys.modules


def test_a_missing_tracker_package_is_one_clear_line(sst_files, tmp_path, monkeypatch, capsys):
    import accelerate.tracking

    monkeypatch.setattr(accelerate.tracking, "filter_trackers", lambda log_with, logging_dir=None: [])
    assert main(["train", "--task", "sst-2", "--data-dir", str(sst_files), "--model", "tiny-gpt2", "--steps", "1",
                 "--report-to", "wandb", "--output", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["rlprompt-interp: error: --report-to wandb needs the wandb package: pip install 'wandb' (or pip "
                   "install 'rlprompt-interp[wandb]'), or leave --report-to out"]


def test_plain_config_keeps_what_trackers_take():
    assert tracking.plain_config({"a": 1, "b": None, "c": [1, 2], "d": "x", "run": print, "e": True}) == {
        "a": 1, "b": "None", "c": "[1, 2]", "d": "x", "e": True}
