"""Off-policy replay of scored prompts (``--replay-updates``) and the default time budget."""

import pytest
import torch

from rlprompt_interp.algorithms import SQLConfig, SQLTrainer
from rlprompt_interp.algorithms.trainer import DEFAULT_BUDGET_MINUTES, DEFAULT_STEPS
from rlprompt_interp.models import load_lm
from rlprompt_interp.policies import LMAdaptorPolicy

from rlprompt_interp.rewards import Reward, RewardOutput

from test_policy import uniform_policy  # tests/ is on sys.path under pytest
from test_sql import TARGET, TargetFraction
from test_train import cli_args, states  # noqa: F401 (a fixture)

pytestmark = pytest.mark.usefixtures("single_thread")


def test_a_replayed_rollout_has_the_q_values_of_the_sampled_one():
    # the LM prior and the no-repeat ban both depend on the states: recomputed from the kept hidden states they
    # must give the sampled rollout's masks, prior and Q-values, without running the LM again
    policy = LMAdaptorPolicy(load_lm("tiny-gpt2", device="cpu", dtype="float32"), mlp_width=64, prior_weight=1.0,
                             no_repeat=2, action_space="all")
    sampled = policy.sample(6, 4, generator=torch.Generator().manual_seed(0))
    calls = []
    hook = policy.lm.model.register_forward_hook(lambda *args: calls.append(1))
    replayed = policy.replayed_rollout(sampled.token_ids, sampled.hidden)
    hook.remove()
    assert not calls
    assert torch.equal(replayed.allowed, sampled.allowed)
    assert torch.equal(replayed.prior, sampled.prior)
    assert torch.equal(policy.rollout_q_values(replayed), policy.rollout_q_values(sampled))


def replay_trainer(replay_updates: int, steps: int, output_dir=None, seed: int = 0, **options) -> SQLTrainer:
    policy = uniform_policy(load_lm("tiny-gpt2", device="cpu", dtype="float32"), mlp_width=128)
    config = SQLConfig(prompt_length=5, steps=steps, prompts_per_step=8, lr=1e-2, eval_every=0, seed=seed,
                       replay_updates=replay_updates, rescore_samples=0, **options)
    return SQLTrainer(policy, TargetFraction(), config, output_dir=output_dir)


def sampled_fraction(trainer: SQLTrainer, last: int = 10) -> float:
    return sum(row["fraction"] for row in trainer.curve[-last:]) / last


def test_replay_learns_more_from_the_same_reward_calls():
    # 30 reward calls a run, 3 seeds: on-policy alone samples target tokens 0.02-0.52 of the time by the end (chance:
    # 0.02); two more updates on each step's prompts take every seed above 0.85
    on_policy, replayed = [], []
    for seed in range(3):
        runs = replay_trainer(0, 30, seed=seed), replay_trainer(2, 30, seed=seed)
        for run in runs:
            run.train(progress=False)
        assert runs[0].updates == 30 and runs[1].updates == 30 * 3
        on_policy.append(sampled_fraction(runs[0]))
        replayed.append(sampled_fraction(runs[1]))
    assert min(replayed) > 0.85 and max(on_policy) < 0.6, (replayed, on_policy)
    assert "replay/loss" in runs[1].curve[-1]


@pytest.mark.parametrize("options", [dict(replay_buffer=3), dict(replay_buffer=3, replay_best=2),
                                     dict(replay_buffer=3, explore_around=2)])
def test_a_run_with_replay_resumes_to_identical_parameters(tmp_path, options):
    # a buffer of three steps: the checkpoint must carry the replayed prompts, their states and rewards, and with
    # --replay-best (and --explore-around) the tally of the samples that chooses the best ones
    straight = replay_trainer(2, 8, tmp_path / "straight", seed=1, **options)
    straight.train(progress=False)
    first = replay_trainer(2, 8, tmp_path / "split", seed=1, **options)
    first.train(progress=False, stop_after=4)
    again = replay_trainer(2, 8, tmp_path / "split", seed=1, **options)
    assert again.resume() and again.step == 4 and again.updates == 12 and len(again.replayed) == 3
    assert len(again.selection.sampled) == (len(first.selection.sampled) if {"replay_best", "explore_around"} & options.keys() else 0)
    again.train(progress=False)
    for name, value in states(straight).items():
        assert torch.equal(value, states(again)[name]), name
    assert again.selection.sampled == straight.selection.sampled


def test_without_steps_a_run_trains_100_steps_within_the_default_budget():
    policy = LMAdaptorPolicy(load_lm("tiny-gpt2", device="cpu"), mlp_width=64)
    config = SQLTrainer(policy, TargetFraction(), SQLConfig(steps=None)).config
    assert (config.steps, config.max_minutes) == (DEFAULT_STEPS, DEFAULT_BUDGET_MINUTES) == (100, 7.0)
    assert SQLTrainer(policy, TargetFraction(), SQLConfig(steps=5)).config.max_minutes is None  # the count rules
    short = SQLTrainer(policy, TargetFraction(), SQLConfig(steps=None, max_minutes=0.3 / 60, prompt_length=3,
                                                           prompts_per_step=4, eval_every=0))
    short.train(progress=False)
    assert short.step >= 1 and short.elapsed >= 0.3 and short.best is not None


def test_train_without_steps_runs_on_the_clock_and_records_the_budget(tmp_path, cli_args):
    import yaml

    from rlprompt_interp.cli import main
    from rlprompt_interp.prompts import LearnedPrompt

    out = tmp_path / "budget"
    assert main(cli_args + ["--max-minutes", "0.02", "--output", str(out), "--no-test-eval"]) == 0
    learned = LearnedPrompt.load(out)
    assert learned.provenance["config"]["sql"]["steps"] is None
    assert learned.provenance["config"]["sql"]["max_minutes"] == 0.02
    assert len(learned.curve) >= 1 and learned.curve[-1]["time"] >= 0.02 * 60
    assert yaml.safe_load((out / "config.yaml").read_text())["training"]["steps"] is None  # a replay: the budget again


def test_the_best_samples_so_far_join_each_update_scored_on_the_steps_examples():
    # three prompts already sampled, with mean training scores 0.6, 0.8 (0.4 then 1.2) and 0.2: the two best join
    # the next step's 8 prompts, scored by the reward anew and teacher-forced through the frozen LM
    trainer = replay_trainer(0, 1, replay_best=2)
    good, better, poor = (100, 101, 102, 103, 104), (105, 106, 107, 108, 109), (1, 2, 3, 4, 5)
    trainer.selection.sampled = {good: [0.6, 1, 0], better: [1.6, 2, 0], poor: [0.2, 1, 0]}
    rollout, scores, _ = trainer.write_prompts(trainer.env)
    joined, joined_scores, logs = trainer.join_best_samples(rollout, scores)
    assert joined.token_ids.shape == (10, 5) and torch.equal(joined.token_ids[:8], rollout.token_ids)
    assert [tuple(row) for row in joined.token_ids[8:].tolist()] == [better, good]
    assert joined_scores[8:].tolist() == [1.0, 1.0]  # every token of both is a target token
    forced = trainer.policy.teacher_forcing(torch.tensor([better, good]))
    assert torch.allclose(joined.hidden[8:], forced.hidden, atol=1e-5)
    assert torch.equal(trainer.policy.rollout_q_values(joined)[8:], trainer.policy.rollout_q_values(forced))
    assert logs["replay/best_reward"] == 1.0
    # a prompt the step sampled itself is not added twice: the next best is
    again, _, logs = trainer.join_best_samples(joined, joined_scores)
    assert [tuple(row) for row in again.token_ids[10:].tolist()] == [poor] and logs["replay/best_reward"] == 0.0
    # the tally counts the replayed rows: the better prompt's mean becomes (1.6 + 1.0) / 3
    trainer.train(progress=False)
    assert trainer.selection.sampled[better][:2] == pytest.approx([2.6, 3]) and trainer.updates == 1


class NoisyFraction(Reward):
    """TargetFraction seen through a few examples, like a gap reward on a 16-example batch: each (prompt, example)
    pair adds its own fixed noise, so one step's score of a prompt is its fraction plus the mean noise of the
    step's examples, and only its mean over many steps says how good it is."""

    name = "noisy"

    def __call__(self, prompts, batch):
        fractions = [sum(t in TARGET for t in ids) / len(ids) for ids in prompts.token_ids]
        noise = [sum((hash(tuple(ids)) * 1000003 + row) % 997 / 997 - 0.5 for row in batch["row"]) / len(batch["row"])
                 for ids in prompts.token_ids]
        return RewardOutput(torch.tensor([f + 2 * n for f, n in zip(fractions, noise)]),
                            {"fraction": sum(fractions) / len(fractions)})


def test_replaying_the_best_samples_learns_more_from_a_noisy_reward():
    # 40 steps of 8 prompts on 8 of 64 examples, 3 seeds: the sampled fraction of target tokens over the last 10
    # steps sums to 0.16 on-policy and to 1.09 with the 4 best samples so far in every update
    def final_fraction(replay_best: int, seed: int) -> float:
        policy = uniform_policy(load_lm("tiny-gpt2", device="cpu", dtype="float32"), mlp_width=128)
        config = SQLConfig(prompt_length=5, steps=40, prompts_per_step=8, examples_per_step=8, lr=1e-2, eval_every=0,
                           seed=seed, rescore_samples=0, replay_best=replay_best)
        trainer = SQLTrainer(policy, NoisyFraction(), config, train_data={"row": list(range(64))})
        trainer.train(progress=False)
        return sampled_fraction(trainer)

    on_policy = [final_fraction(0, seed) for seed in range(3)]
    best_replayed = [final_fraction(4, seed) for seed in range(3)]
    assert sum(best_replayed) > sum(on_policy) + 0.6, (best_replayed, on_policy)
