"""Training runs: exact resume, checkpoints, the best prompt, and the ``train`` command."""

import json

import pytest
import torch

from rlprompt_interp.algorithms import SQLConfig, SQLTrainer
from rlprompt_interp.algorithms.trainer import CHECKPOINT_FILE
from rlprompt_interp.models import load_lm
from rlprompt_interp.policies import LMAdaptorPolicy
from rlprompt_interp.prompts import LearnedPrompt

from test_sql import TargetFraction  # tests/ is on sys.path under pytest


pytestmark = pytest.mark.usefixtures("single_thread")


def trainer(output_dir, steps=12):
    policy = LMAdaptorPolicy(load_lm("tiny-gpt2", device="cpu"), mlp_width=128)
    config = SQLConfig(prompt_length=4, steps=steps, prompts_per_step=6, lr=1e-2, eval_every=3, seed=3)
    return SQLTrainer(policy, TargetFraction(), config, output_dir=output_dir)


def states(t: SQLTrainer):
    return {**{f"mlp.{k}": v for k, v in t.policy.mlp.state_dict().items()},
            **{f"target.{k}": v for k, v in t.target.state_dict().items()}}


def test_stop_and_resume_gives_identical_parameters(tmp_path):
    straight = trainer(tmp_path / "straight")
    straight.train(progress=False)

    first = trainer(tmp_path / "split")
    first.train(progress=False, stop_after=6)  # then the process "dies"
    assert first.step == 6 and (tmp_path / "split" / CHECKPOINT_FILE).is_file()
    again = trainer(tmp_path / "split")  # a new process: fresh policy, optimiser and RNG
    assert again.resume() and again.step == 6
    again.train(progress=False)

    for name, value in states(straight).items():
        assert torch.equal(value, states(again)[name]), name
    adam, adam2 = straight.optimizer.state_dict()["state"], again.optimizer.state_dict()["state"]
    assert all(torch.equal(adam[i]["exp_avg"], adam2[i]["exp_avg"]) for i in adam)
    assert [r["reward"] for r in straight.curve] == [r["reward"] for r in again.curve]
    assert straight.best == again.best


def test_resume_without_a_checkpoint_starts_fresh(tmp_path):
    assert not trainer(tmp_path / "empty").resume()


@pytest.fixture
def cli_args(sst_files):
    return ["train", "--agent", "rlprompt", "--task", "sst-2", "--data-dir", str(sst_files), "--model", "tiny-gpt2",
            "--prompt-length", "3", "--prompts-per-step", "4", "--examples-per-step", "4", "--eval-every", "2",
            "--lr", "1e-3", "--mlp-width", "64", "--quiet"]


def test_train_command_resumes_exactly_and_saves_the_best_prompt(tmp_path, cli_args, capsys):
    from rlprompt_interp.cli import main

    assert main(cli_args + ["--steps", "6", "--output", str(tmp_path / "straight"), "--no-test-eval"]) == 0
    assert main(cli_args + ["--steps", "3", "--output", str(tmp_path / "split"), "--no-test-eval"]) == 0
    # never overwrite a run by accident
    assert main(cli_args + ["--steps", "6", "--output", str(tmp_path / "split")]) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert main(cli_args + ["--steps", "6", "--output", str(tmp_path / "split"), "--resume"]) == 0
    load = lambda d: torch.load(tmp_path / d / CHECKPOINT_FILE, weights_only=True)
    straight, split = load("straight"), load("split")
    assert straight["step"] == split["step"] == 6
    for key in straight["mlp"]:
        assert torch.equal(straight["mlp"][key], split["mlp"][key]), key

    learned = LearnedPrompt.load(tmp_path / "split")
    best = LearnedPrompt.load(tmp_path / "split" / "best")
    assert learned.text == best.text and learned.provenance["method"] == "rlprompt"
    assert learned.provenance["task_model"] == "tiny-gpt2" and learned.token_ids
    assert "test_accuracy" in json.loads((tmp_path / "split" / "scores.json").read_text())
    assert len(learned.curve) == 6 and "dev/accuracy" in learned.curve[1]


def test_train_command_takes_a_reward_function(tmp_path, cli_args):
    from rlprompt_interp.cli import main

    out = tmp_path / "fn"
    assert main(cli_args + ["--steps", "2", "--output", str(out), "--no-test-eval", "--reward", "",
                            "--reward-fn", "test_rewards_perplexity:prompt_lengths"]) == 0
    assert "prompt_lengths/mean" in LearnedPrompt.load(out).curve[0]


def test_a_time_budget_stops_training_and_scores_the_last_prompt(tmp_path):
    import time as clock

    class Slow(TargetFraction):
        def __call__(self, prompts, batch):
            clock.sleep(0.05)
            return super().__call__(prompts, batch)

    policy = LMAdaptorPolicy(load_lm("tiny-gpt2", device="cpu"), mlp_width=64)
    config = SQLConfig(prompt_length=3, steps=1000, prompts_per_step=4, eval_every=100, max_minutes=0.5 / 60, seed=0)
    t = SQLTrainer(policy, Slow(), config, output_dir=tmp_path)
    best = t.train(progress=False)
    assert 1 <= t.step < 1000 and t.elapsed >= 0.5
    assert best["step"] == t.step and "dev/reward" in t.curve[-1]  # scored where the clock stopped it
    again = SQLTrainer(LMAdaptorPolicy(load_lm("tiny-gpt2", device="cpu"), mlp_width=64), Slow(), config,
                       output_dir=tmp_path)
    assert again.resume() and again.elapsed == t.elapsed
    again.train(progress=False)
    assert again.step == t.step  # the budget was spent before the resume: nothing more to train


def test_condition_auto_writes_after_the_task_description(tmp_path, sst_files, cli_args, capsys):
    """By default a task without a description trains after one derived from its verbalizers, said in the
    first lines and recorded in prompt.json; a built-in task has its own."""
    import json

    from rlprompt_interp.cli import main

    split = sst_files / "sst-2" / "16-42"
    task_file = tmp_path / "task.json"
    task_file.write_text(json.dumps({"files": {"train": str(split / "train.tsv"), "dev": str(split / "dev.tsv")},
                                     "verbalizers": [" bad", " good"]}))
    out = tmp_path / "auto"
    assert main(cli_args + ["--task", str(task_file), "--steps", "2", "--output", str(out), "--no-test-eval"]) == 0
    derived = "Classify this text as bad or good."
    assert capsys.readouterr().out.startswith(
        f"the policy writes its prompt after {derived!r} (derived from the task's verbalizers)")
    assert LearnedPrompt.load(out).provenance["condition"] == derived
    assert main(cli_args + ["--steps", "1", "--output", str(tmp_path / "own"), "--no-test-eval"]) == 0
    assert "(the task's description)" in capsys.readouterr().out
