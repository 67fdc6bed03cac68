"""The grpo and rloo agents (TRL's trainers): learning a synthetic reward, exact resume, the train command."""

import json

import pytest
import torch
from safetensors.torch import load_file

from conftest import FEW_SHOT, needs_shared_data
from rlprompt_interp.agents import get_agent
from rlprompt_interp.agents.trl_agents import STATE_FILE, default_condition, last_checkpoint
from rlprompt_interp.prompts import LearnedPrompt
from rlprompt_interp.rewards import Reward, RewardOutput
from rlprompt_interp.tasks import get_task

pytestmark = pytest.mark.usefixtures("single_thread")

TARGET = set(range(3, 100))  # a fifth of tiny-gpt2's tokens: a group of 8 prompts always has some spread


class TargetFraction(Reward):
    """Synthetic reward: the fraction of the prompt's tokens that lie in TARGET."""

    name = "fraction"

    def __call__(self, prompts, batch):
        scores = torch.tensor([sum(t in TARGET for t in ids) / len(ids) for ids in prompts.token_ids])
        return RewardOutput(scores, {"fraction": float(scores.mean())})


@pytest.fixture
def task(sst_files):
    return get_task("sst-2", data_dir=str(sst_files))


def rewards(learned):
    return [row["reward"] for row in learned.curve if "reward" in row]


def test_grpo_learns_a_synthetic_reward(task):
    # A random tiny model is close to uniform and its LoRA adapters barely move the logits, so the test fine-tunes
    # every weight with a large constant learning rate: what is checked is that TRL's updates follow our reward.
    agent = get_agent("grpo", model="tiny-gpt2", reward=TargetFraction(), prompts_per_step=8, examples_per_step=2,
                      full_finetune=True, lr=0.1, eval_every=4, quiet=True,
                      trl_options={"lr_scheduler_type": "constant"})
    learned = agent.fit(task, prompt_length=4, steps=8, seed=0)
    curve = rewards(learned)
    assert len(curve) == 8
    assert sum(curve[-3:]) / 3 > sum(curve[:3]) / 3 + 0.2, curve
    assert learned.scores["dev_reward"] > 0.5 and learned.provenance["method"] == "grpo"
    assert len(learned.provenance["policy_token_ids"]) == 4  # exactly L tokens, none of them special
    assert [row["step"] for row in learned.curve if "dev/reward" in row] == [4, 8]


def test_rloo_full_finetune_takes_its_kl_reference_from_the_initial_weights(task):
    agent = get_agent("rloo", model="tiny-gpt2", reward=TargetFraction(), prompts_per_step=4, examples_per_step=2,
                      full_finetune=True, lr=0.1, eval_every=0, quiet=True)
    learned = agent.fit(task, prompt_length=3, steps=2, seed=0)
    kl = [row["kl"] for row in learned.curve if "kl" in row]  # RLOO's default beta is 0.05: a reference model
    assert kl[0] == pytest.approx(0.0, abs=1e-6) and kl[1] > 0  # equal to the policy before the first update
    assert learned.provenance["config"]["lora"] is None and "peft_version" not in learned.provenance


def test_resume_continues_exactly_and_keeps_the_dev_results(task, tmp_path):
    def agent():
        return get_agent("rloo", model="tiny-gpt2", prompts_per_step=4, examples_per_step=4, eval_every=2, lr=1e-2,
                         quiet=True, trl_options={"lr_scheduler_type": "constant"})

    straight = agent().fit(task, prompt_length=3, steps=4, seed=1, output_dir=tmp_path / "straight")
    agent().fit(task, prompt_length=3, steps=2, seed=1, output_dir=tmp_path / "split")
    assert json.loads((tmp_path / "split" / "trainer" / "checkpoint-2" / STATE_FILE).read_text())["best"]["step"] == 2
    with pytest.raises(FileExistsError, match="pass --resume"):
        agent().fit(task, prompt_length=3, steps=4, seed=1, output_dir=tmp_path / "split")
    resumed = agent().fit(task, prompt_length=3, steps=4, seed=1, output_dir=tmp_path / "split", resume=True)

    weights = [load_file(f"{last_checkpoint(tmp_path / run / 'trainer')}/adapter_model.safetensors")
               for run in ("straight", "split")]
    assert last_checkpoint(tmp_path / "split" / "trainer").endswith("checkpoint-4")
    for name, value in weights[0].items():
        assert torch.equal(value, weights[1][name]), name
    assert rewards(straight) == rewards(resumed) and len(rewards(resumed)) == 4
    assert straight.text == resumed.text and straight.scores == resumed.scores
    assert agent().has_checkpoint(tmp_path / "split") and not agent().has_checkpoint(tmp_path / "none")


def test_options_are_checked_before_any_model_loads(task):
    with pytest.raises(ValueError, match="neither GRPOConfig nor RLOOConfig has such a field"):
        get_agent("grpo", trl_options={"no_such_field": 1})
    with pytest.raises(ValueError, match="prompts_per_step must be at least 2, got 1: each step's prompts are one group"):
        get_agent("rloo", prompts_per_step=1)
    assert "'negative' or 'positive'" in default_condition(task)


@needs_shared_data()
@pytest.mark.parametrize("agent", ["grpo", "rloo"])
def test_train_command_writes_the_learned_prompt(agent, tmp_path):
    from rlprompt_interp.cli import main

    out = tmp_path / "out"
    args = ["train", "--agent", agent, "--task", "sst-2", "--data-dir", str(FEW_SHOT), "--model", "tiny-gpt2",
            "--prompt-length", "3", "--steps", "2", "--output", str(out), "--no-test-eval", "--quiet"]
    assert main(args) == 0
    learned = LearnedPrompt.load(out)
    assert learned.provenance["method"] == agent and learned.provenance["trl_version"]
    assert learned.provenance["config"]["trainer"] == {"grpo": "GRPOTrainer", "rloo": "RLOOTrainer"}[agent]
    assert learned.token_ids and LearnedPrompt.load(out / "best").text == learned.text
    assert main(args) == 2  # never overwrite a run by accident
    assert main(args + ["--steps", "3", "--resume"]) == 0
    assert last_checkpoint(out / "trainer").endswith("checkpoint-3")


def test_bad_trl_option_is_a_usage_error(capsys):
    from rlprompt_interp.cli import main

    assert main(["train", "--agent", "grpo", "--task", "sst-2", "--output", "x", "--trl-option", "nonsense=1"]) == 2
    assert "--trl-option gives ['nonsense']: neither GRPOConfig nor RLOOConfig has such a field" in capsys.readouterr().err
