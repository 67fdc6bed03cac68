"""Soft Q-learning: hand-computed losses, gradient directions, target updates, and a learning test."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from rlprompt_interp.algorithms import SQLConfig, SQLTrainer, TargetUpdater, sql_loss
from rlprompt_interp.algorithms.trainer import behaviour_share, policy_lead, writer_logs
from rlprompt_interp.models import load_lm
from rlprompt_interp.rewards import Reward, RewardOutput

from test_policy import uniform_policy  # RLPrompt's policy; tests/ is on sys.path under pytest

LOG2 = math.log(2)


pytestmark = pytest.mark.usefixtures("single_thread")


def test_losses_hand_computed():
    # two steps, two actions, all logits 0: V = log 2, A = -log 2 everywhere; reward 1
    logits, target = torch.zeros(1, 2, 2), torch.zeros(1, 2, 2)
    actions, reward = torch.zeros(1, 2, dtype=torch.long), torch.ones(1)
    single = (LOG2 ** 2 + 1) / 2  # t=0: (-log2 - 0)^2; t=1: (-log2 - (1 - log2))^2
    multi = ((1 + LOG2) ** 2 + 1) / 2  # t=0: (-2 log2 - (1 - log2))^2; t=1: as single
    for mode, expected in [("single", single), ("single_reversed", single), ("multi", multi),
                           ("multi_reversed", multi), ("mix", (single + multi) / 2)]:
        loss, logs = sql_loss(logits, target, actions, reward, mode)
        assert loss.item() == pytest.approx(expected), mode
    assert set(logs) == {"loss/single", "loss/single_reversed", "loss/multi", "loss/multi_reversed"}


@pytest.mark.parametrize("mode", ["single", "single_reversed", "multi", "multi_reversed", "mix"])
def test_gradient_follows_the_reward(mode):
    # one-step bandit from a uniform start: a high reward raises the action's log-probability (direct
    # forms) and the state's value V (reversed forms, whose gradient reaches the policy through V)
    for reward, sign in ((10.0, 1), (-10.0, -1)):
        logits = torch.zeros(1, 1, 4, requires_grad=True)
        loss, _ = sql_loss(logits, torch.zeros(1, 1, 4), torch.tensor([[2]]), torch.tensor([reward]), mode)
        loss.backward()
        new = logits.detach() - 0.1 * logits.grad
        if "reversed" in mode:
            assert sign * (new.logsumexp(-1) - math.log(4)).item() > 0, (mode, reward)
        else:
            assert sign * (new.log_softmax(-1)[0, 0, 2] - math.log(0.25)).item() > 0, (mode, reward)


def test_target_network_gets_no_gradient_and_shapes_are_checked():
    logits, target = torch.randn(2, 3, 5, requires_grad=True), torch.randn(2, 3, 5, requires_grad=True)
    loss, _ = sql_loss(logits, target, torch.zeros(2, 3, dtype=torch.long), torch.ones(2))
    loss.backward()
    assert target.grad is None and logits.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="shape"):
        sql_loss(logits, target, torch.zeros(2, 2, dtype=torch.long), torch.ones(2))
    with pytest.raises(ValueError, match="unknown"):
        sql_loss(logits, target, torch.zeros(2, 3, dtype=torch.long), torch.ones(2), mode="v3")


def test_target_updates():
    online, target = torch.nn.Linear(1, 1, bias=False), torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        online.weight.fill_(1.0), target.weight.fill_(0.0)
    TargetUpdater("polyak", rate=1e-3)(target, online, step=1)
    assert target.weight.item() == pytest.approx(1e-3)
    copy = TargetUpdater("copy", period=3)
    copy(target, online, step=2)
    assert target.weight.item() == pytest.approx(1e-3)
    copy(target, online, step=3)
    assert target.weight.item() == 1.0


TARGET = set(range(100, 110))  # 10 of tiny-gpt2's 470 tokens: chance is about 0.02


class TargetFraction(Reward):
    """Synthetic reward: the fraction of prompt tokens drawn from TARGET (times ``sign``)."""

    name = "fraction"

    def __init__(self, sign: float = 1.0):
        self.sign = sign

    def __call__(self, prompts, batch):
        scores = torch.tensor([sum(t in TARGET for t in ids) / len(ids) for ids in prompts.token_ids])
        return RewardOutput(self.sign * scores, {"fraction": float(scores.mean())})


def learn(sign: float = 1.0, steps: int = 150):
    policy = uniform_policy(load_lm("tiny-gpt2", device="cpu"))
    config = SQLConfig(prompt_length=5, steps=steps, prompts_per_step=16, lr=1e-2, eval_every=0, seed=0)
    trainer = SQLTrainer(policy, TargetFraction(sign), config)
    before = trainer.greedy_prompt()[1]
    trainer.train(progress=False)
    after = trainer.greedy_prompt()[1]
    fraction = [sum(t in TARGET for t in ids) / len(ids) for ids in (before, after)]
    return fraction[0], fraction[1], trainer


def test_sql_learns_a_synthetic_reward():
    before, after, trainer = learn()
    assert before <= 0.2 and after >= 0.9, (before, after)
    assert trainer.curve[-1]["fraction"] > 0.5  # the sampled prompts moved too, not only the greedy one


def test_a_negated_reward_does_not_learn():
    _, after, _ = learn(sign=-1.0)
    assert after <= 0.2


def test_dense_token_rewards_enter_the_targets_hand_computed():
    # as test_losses_hand_computed, plus r = (0.5, -1) per token: single targets gain r_t, multi targets sum_{k>=t} r_k
    logits, target = torch.zeros(1, 2, 2), torch.zeros(1, 2, 2)
    actions, reward, dense = torch.zeros(1, 2, dtype=torch.long), torch.ones(1), torch.tensor([[0.5, -1.0]])
    single = ((-LOG2 - 0.5) ** 2 + (-LOG2 - (1 - 1 - LOG2)) ** 2) / 2
    multi = ((-2 * LOG2 - (1 - 0.5 - LOG2)) ** 2 + (-LOG2 - (1 - 1 - LOG2)) ** 2) / 2
    assert sql_loss(logits, target, actions, reward, "single", dense)[0].item() == pytest.approx(single)
    assert sql_loss(logits, target, actions, reward, "multi", dense)[0].item() == pytest.approx(multi)
    with pytest.raises(ValueError, match="token_rewards"):
        sql_loss(logits, target, actions, reward, "mix", torch.zeros(1, 3))


def test_the_lm_prior_starts_at_the_kl_optimum_and_learns():
    lm = load_lm("tiny-gpt2", device="cpu")
    # with no terminal reward and beta = 1 the LM itself satisfies the KL-regularised Bellman equation
    exact = uniform_policy(lm, prior_weight=1.0)
    rollout = exact.sample(16, 5, generator=torch.Generator().manual_seed(0))
    logits = exact.rollout_q_values(rollout)
    loss, _ = sql_loss(logits, logits.detach(), rollout.token_ids, torch.zeros(16), "mix", exact.prior_rewards(rollout))
    assert loss.item() < 1e-4
    # (the KL penalty holds the policy near the LM, so it commits less than RLPrompt's uniform start does)
    policy = uniform_policy(lm, prior_weight=0.5)
    config = SQLConfig(prompt_length=5, steps=150, prompts_per_step=16, lr=1e-2, eval_every=0, seed=0)
    trainer = SQLTrainer(policy, TargetFraction(), config)
    trainer.train(progress=False)
    after = trainer.greedy_prompt()[1]
    assert sum(t in TARGET for t in after) / len(after) >= 0.8
    assert sum(row["fraction"] for row in trainer.curve[-20:]) / 20 > 0.3  # chance: 0.02
    assert "prior/log_prob" in trainer.curve[-1]


def test_rollouts_go_through_the_vector_env(monkeypatch):
    from rlprompt_interp.envs import PromptVectorEnv

    actions_seen = []
    step = PromptVectorEnv.step
    monkeypatch.setattr(PromptVectorEnv, "step", lambda self, actions: actions_seen.append(actions.copy())
                        or step(self, actions))
    policy = uniform_policy(load_lm("tiny-gpt2", device="cpu"), mlp_width=64)
    trainer = SQLTrainer(policy, TargetFraction(), SQLConfig(prompt_length=3, steps=2, prompts_per_step=4,
                                                             eval_every=2, seed=0))
    trainer.train(progress=False)
    assert len(actions_seen) == 2 * 3 + 3  # two training rounds and one greedy dev round, a call per token
    assert [a.shape for a in actions_seen[:3]] == [(4,)] * 3 and actions_seen[-1].shape == (1,)
    assert {"time/sample", "time/reward", "time/update"} <= set(trainer.curve[0])


def test_a_warm_started_trainer_first_writes_the_given_prompt():
    lm = load_lm("tiny-gpt2", device="cpu")
    policy = uniform_policy(lm, mlp_width=64)
    config = SQLConfig(prompt_length=3, steps=1, prompts_per_step=4, eval_every=0, init_prompt=" the movie was", seed=0)
    trainer = SQLTrainer(policy, TargetFraction(), config)
    assert trainer.greedy_prompt()[0] == " the movie was" and trainer.warm_start_steps > 0
    assert torch.equal(trainer.target[2].weight, policy.mlp[2].weight)  # the target network starts warm too
    with pytest.raises(ValueError, match="between 1 and"):
        SQLTrainer(policy, TargetFraction(), SQLConfig(prompt_length=2, init_prompt=" the movie was great"))


def test_with_a_behaviour_policy_each_writers_prompts_are_logged_apart():
    # by hand: rows 2 and 3 of 4 are the behaviour's; rewards 1, 2 | 3, 4 and accuracies 1, 0 | 1, 1
    logs = writer_logs({"accuracy/per_prompt": np.array([1.0, 0.0, 1.0, 1.0])}, torch.tensor([1.0, 2.0, 3.0, 4.0]),
                       np.array([False, False, True, True]))
    assert logs == {"reward/policy": 1.5, "reward/behaviour": 3.5, "accuracy/policy": 0.5, "accuracy/behaviour": 1.0}
    assert writer_logs({}, torch.ones(4), np.zeros(4, dtype=bool)) == {}  # no behaviour policy, nothing to split
    # in a run: 6 policy rows and 2 behaviour rows a step, so the step's mean reward is their weighted mean
    policy = uniform_policy(load_lm("tiny-gpt2", device="cpu", dtype="float32"), mlp_width=128,
                            explore_fraction=0.25, explore_with="lm")
    config = SQLConfig(prompt_length=5, steps=3, prompts_per_step=8, lr=1e-2, eval_every=0, seed=0, rescore_samples=0)
    trainer = SQLTrainer(policy, TargetFraction(), config)
    trainer.train(progress=False)
    for row in trainer.curve:
        assert row["reward"] == pytest.approx(0.75 * row["reward/policy"] + 0.25 * row["reward/behaviour"])


def test_the_behaviour_share_follows_the_policys_lead_by_hand():
    # the lead: the mean over the last 10 steps of the policy rows' accuracy minus the behaviour rows'
    curve = [{"reward/policy": 0.0, "reward/behaviour": 0.0, "accuracy/policy": 0.5, "accuracy/behaviour": 0.5}] * 5
    curve += [{"reward/policy": 9.0, "reward/behaviour": 1.0, "accuracy/policy": 0.7, "accuracy/behaviour": 0.5}] * 10
    assert policy_lead(curve) == pytest.approx(0.2)  # only the last 10 rows count
    assert policy_lead(curve[:10]) == pytest.approx(0.1)  # 5 rows with no lead, 5 with 0.2
    assert policy_lead([{"reward/policy": 3.0, "reward/behaviour": 1.0}]) == 2.0  # no accuracy: the raw reward
    assert policy_lead([{"reward": 1.0}]) is None  # no behaviour rows yet
    # the share: the fraction with no lead, linearly down to one prompt of 8 at a lead of GAP (0.1), and no lower
    assert behaviour_share(0.5, None, 0.1, 8) == 0.5
    assert behaviour_share(0.5, -0.05, 0.1, 8) == 0.5
    assert behaviour_share(0.5, 0.04, 0.1, 8) == pytest.approx(0.3)
    assert behaviour_share(0.5, 0.09, 0.1, 8) == 0.125
    assert behaviour_share(0.5, 0.3, 0.1, 8) == 0.125


def test_a_policy_that_leads_hands_the_behaviour_policy_one_prompt_a_step():
    lm = load_lm("tiny-gpt2", device="cpu", dtype="float32")
    config = SQLConfig(prompt_length=5, steps=12, prompts_per_step=8, lr=1e-2, eval_every=0, seed=0,
                       rescore_samples=0, explore_gap=0.1)
    # warm-started on target tokens, the policy's own prompts score ~0.7 where the LM prior's score ~0
    policy = uniform_policy(lm, mlp_width=128, explore_fraction=0.5, explore_with="lm")
    trainer = SQLTrainer(policy, TargetFraction(), config)
    policy.warm_start(sorted(TARGET)[:5], min_prob=0.5)
    trainer.train(progress=False)
    shares = [row["explore/share"] for row in trainer.curve]
    assert shares[0] == 0.5 and shares[1:] == [0.125] * 11
    for row in trainer.curve[1:]:  # one behaviour prompt of 8 a step, its reward logged apart
        assert row["reward"] == pytest.approx(0.875 * row["reward/policy"] + 0.125 * row["reward/behaviour"])
    # with no lead (a reward nothing scores on) the share stays at the fraction
    policy = uniform_policy(lm, mlp_width=128, explore_fraction=0.5, explore_with="lm")
    trainer = SQLTrainer(policy, TargetFraction(sign=0.0), dataclasses.replace(config, steps=3))
    trainer.train(progress=False)
    assert [row["explore/share"] for row in trainer.curve] == [0.5] * 3
    with pytest.raises(ValueError, match="explore_gap.*--explore-fraction"):
        SQLTrainer(uniform_policy(lm, mlp_width=16), TargetFraction(), config)


def test_a_run_that_follows_the_lead_resumes_where_it_stopped(tmp_path):
    # the share is read off the curve each step, so a resumed run takes the same shares and the same prompts
    lm = load_lm("tiny-gpt2", device="cpu", dtype="float32")
    config = SQLConfig(prompt_length=4, steps=6, prompts_per_step=8, lr=1e-2, eval_every=0, checkpoint_every=3,
                       seed=1, rescore_samples=0, explore_gap=0.05)

    def trainer(folder):
        policy = uniform_policy(lm, mlp_width=64, explore_fraction=0.5, explore_with="lm")
        return SQLTrainer(policy, TargetFraction(), config, output_dir=tmp_path / folder)

    straight = trainer("a")
    straight.train(progress=False)
    assert len({row["explore/share"] for row in straight.curve[3:]}) > 1  # the share moves after the checkpoint
    trainer("b").train(progress=False, stop_after=3)
    resumed = trainer("b")
    assert resumed.resume() and resumed.step == 3
    resumed.train(progress=False)
    assert [row["explore/share"] for row in resumed.curve] == [row["explore/share"] for row in straight.curve]
    assert [row["sample"] for row in resumed.curve] == [row["sample"] for row in straight.curve]


def test_a_writer_begins_the_first_prompts_with_the_given_prefixes():
    policy = uniform_policy(load_lm("tiny-gpt2", device="cpu", dtype="float32"), mlp_width=16, prior_weight=1.0,
                            no_repeat=2, action_space="all")
    free = policy.sample(3, 4, generator=torch.Generator().manual_seed(0))
    writer = policy.writer(3, generator=torch.Generator().manual_seed(0), prefixes=[[11, 12], [13]])
    for step in range(4):
        tokens = writer.choose()
        if step < 3:
            writer.feed(tokens)
    rollout = writer.rollout()
    assert rollout.token_ids[0, :2].tolist() == [11, 12] and rollout.token_ids[1, 0] == 13
    assert torch.equal(rollout.token_ids[2], free.token_ids[2])  # a row without a prefix is sampled as ever
    # the written tokens' states are those of teacher forcing the same prompts: the update sees what was written
    forced = policy.teacher_forcing(rollout.token_ids)
    assert torch.allclose(forced.hidden, rollout.hidden, atol=1e-5)
    with pytest.raises(ValueError, match="3 prefixes for 2 prompts"):
        policy.writer(2, prefixes=[[1], [2], [3]])


def test_explore_around_continues_prefixes_of_the_best_prompts_sampled():
    lm = load_lm("tiny-gpt2", device="cpu", dtype="float32")
    config = SQLConfig(prompt_length=5, steps=6, prompts_per_step=8, lr=1e-2, eval_every=0, seed=0,
                       rescore_samples=0, explore_around=3)
    trainer = SQLTrainer(uniform_policy(lm, mlp_width=32), TargetFraction(), config)
    trainer.train(progress=False, stop_after=5)
    best = trainer.selection.best_sampled(3)
    generator_state = trainer.generator.get_state()
    prefixes = trainer.best_prefixes()
    assert len(prefixes) == 3 and all(1 <= len(p) <= 4 and list(ids[:len(p)]) == p for p, ids in zip(prefixes, best))
    trainer.generator.set_state(generator_state)
    trainer.train(progress=False)
    sampled = [list(ids) for ids in trainer.selection.sampled if trainer.selection.sampled[ids][2] == 6]
    for prefix in prefixes:  # step 6's first prompts begin with them
        assert any(ids[:len(prefix)] == prefix for ids in sampled)
    row = trainer.curve[-1]
    assert "reward/around" in row and "reward/around" not in trainer.curve[0]  # nothing sampled before step 1
    with pytest.raises(ValueError, match="explore_around.*more than the 8 sampled"):
        SQLTrainer(uniform_policy(lm, mlp_width=16), TargetFraction(), dataclasses.replace(config, explore_around=9))
    with pytest.raises(ValueError, match="explore_around.*1-token prompt"):
        SQLTrainer(uniform_policy(lm, mlp_width=16), TargetFraction(), dataclasses.replace(config, prompt_length=1))


def test_searching_around_the_best_prompts_learns_faster_from_the_lm_prior():
    # from the LM prior (beta 1), 40 steps of 8 prompts: on-policy samples target tokens at chance (0.02-0.04 over the
    # last 10 steps, every seed); with 4 prompts a step continuing the best ones' prefixes the policy follows them
    # off-policy (0.09, 0.13 and 0.70)
    lm = load_lm("tiny-gpt2", device="cpu", dtype="float32")
    fractions = {}
    for around in (0, 4):
        for seed in range(3):
            config = SQLConfig(prompt_length=5, steps=40, prompts_per_step=8, lr=1e-2, eval_every=0, seed=seed,
                               rescore_samples=0, explore_around=around)
            trainer = SQLTrainer(uniform_policy(lm, mlp_width=128, prior_weight=1.0), TargetFraction(), config)
            trainer.train(progress=False)
            fractions.setdefault(around, []).append(sum(row["fraction"] for row in trainer.curve[-10:]) / 10)
    assert all(a > 2 * b for a, b in zip(fractions[4], fractions[0])), fractions
    assert sum(fractions[4]) > 4 * sum(fractions[0]), fractions
