"""Sparse Tsallis soft Q-learning (PIN): sparsemax and spmax against values worked by hand, the losses
by hand, a policy that never samples outside the support, a learning test and the flag."""

import pytest
import torch

from rlprompt_interp.agents.rlprompt import RLPromptConfig
from rlprompt_interp.algorithms import SQLConfig, SQLTrainer, sql_loss
from rlprompt_interp.cli import build_parser
from rlprompt_interp.models import load_lm
from rlprompt_interp.policies.sparsemax import sparsemax, sparsemax_threshold, spmax, tsallis_entropy
from test_sql import TARGET, TargetFraction

from test_policy import uniform_policy  # RLPrompt's policy; tests/ is on sys.path under pytest

pytestmark = pytest.mark.usefixtures("single_thread")
INF = float("inf")


def test_sparsemax_by_hand():
    # z = [1, 0.5, -1]: k = 2 (1 + 2 * 0.5 = 2 > 1.5, 1 + 3 * (-1) = -2 < 0.5), tau = (1.5 - 1) / 2
    tau, size = sparsemax_threshold(torch.tensor([1.0, 0.5, -1.0]))
    assert tau.item() == 0.25 and size.item() == 2
    assert sparsemax(torch.tensor([1.0, 0.5, -1.0])).tolist() == [0.75, 0.25, 0.0]
    assert sparsemax(torch.tensor([0.0, 0.0])).tolist() == [0.5, 0.5]
    assert sparsemax(torch.tensor([1.0, 2.0, 3.0])).tolist() == [0.0, 0.0, 1.0]  # gap >= 1: one-hot
    assert sparsemax(torch.tensor([3.0, 3.0, 3.0]) + 100).tolist() == pytest.approx([1 / 3] * 3)  # shift-invariant
    # masked entries get exactly 0 and change nothing else
    masked = sparsemax(torch.tensor([[1.0, -INF, 0.5, -1.0, -INF], [-INF, 2.0, -INF, -INF, -INF]]))
    assert masked.tolist() == [[0.75, 0.0, 0.25, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0, 0.0]]


def test_sparsemax_is_the_projection_onto_the_simplex():
    # rows from near-uniform to peaked in one batch: only entries within 1 of a row's max are sorted,
    # so rows with few and with many such entries must share the top-k
    spread = torch.tensor([0.01, 0.3, 2.0, 50.0]).repeat(16)[:, None]
    z = torch.randn(64, 30, generator=torch.Generator().manual_seed(0)) * spread
    z[:, ::3] = -INF
    p = sparsemax(z)
    assert torch.isfinite(p).all() and (p >= 0).all() and (p[:, ::3] == 0).all()
    assert torch.allclose(p.sum(-1), torch.ones(64))
    low, high = z.nan_to_num(neginf=-1e9).min(-1, keepdim=True).values - 1, z.max(-1, keepdim=True).values
    for _ in range(60):  # bisection on tau: sum_a max(z_a - tau, 0) = 1, independent of the sort
        mid = (low + high) / 2
        above = (z - mid).clamp(min=0).sum(-1, keepdim=True) > 1
        low, high = torch.where(above, mid, low), torch.where(above, high, mid)
    assert torch.allclose(p, (z - low).clamp(min=0), atol=1e-5)


def test_spmax_by_hand_and_its_gradient_is_sparsemax():
    # 1/2 sum_{a in S} (z_a^2 - tau^2) + 1/2 = 1/2 ((1 - 1/16) + (1/4 - 1/16)) + 1/2
    assert spmax(torch.tensor([1.0, 0.5, -1.0])).item() == 1.0625
    assert spmax(torch.tensor([0.0, 0.0])).item() == 0.25  # tau = -1/2: 1/2 (2 * -1/4) + 1/2
    assert spmax(torch.tensor([1.0, 2.0, 3.0])).item() == 3.0  # one-hot: the max itself
    assert spmax(torch.tensor([0.5, 1.0, 1.5])).item() == 1.5625  # tau = 3/4, p = (0, 1/4, 3/4)
    z = torch.tensor([[1.0, -INF, 0.5, -1.0, -INF]], requires_grad=True)
    assert spmax(z).item() == 1.0625
    spmax(z).sum().backward()
    assert z.grad.tolist() == [[0.75, 0.0, 0.25, 0.0, 0.0]]
    # and sparsemax's own Jacobian on the support, diag(s) - s s^T / |S|, finite with -inf entries
    z = torch.tensor([[1.0, -INF, 0.5, -1.0, -INF]], requires_grad=True)
    (sparsemax(z) * torch.arange(5.0)).sum().backward()
    assert z.grad.tolist() == [[-1.0, 0.0, 1.0, 0.0, 0.0]]
    assert tsallis_entropy(torch.tensor([0.75, 0.25, 0.0])).item() == 0.5 * (1 - 0.625)


def test_the_advantage_is_not_log_pi_but_a_function_of_pi():
    # on the support Q_a - V = pi_a - 1/2 (1 + ||pi||^2); off it Q_a - V is below that
    q = torch.randn(16, 40, generator=torch.Generator().manual_seed(1)) * 2
    p, advantage = sparsemax(q), q - spmax(q)[:, None]
    bound = -0.5 * (1 + (p * p).sum(-1, keepdim=True))
    support = p > 0
    assert torch.allclose(advantage[support], (p + bound)[support], atol=1e-5)
    assert (advantage[~support] <= bound.expand_as(p)[~support] + 1e-5).all()


def test_tsallis_losses_by_hand():
    # two steps with Q = (1, 2, 3) then (0.5, 1, 1.5), actions 1 then 2, R = 1:
    # V = spmax = 3 then 1.5625 (module docstring of policies.sparsemax), Q(s_t, a_t) = 2 then 1.5
    logits = torch.tensor([[[1.0, 2.0, 3.0], [0.5, 1.0, 1.5]]])
    actions, reward = torch.tensor([[1, 2]]), torch.ones(1)
    a0, a1 = 2 - 3.0, 1.5 - 1.5625
    single = ((a0 - (1.5625 - 3)) ** 2 + (a1 - (1 - 1.5625)) ** 2) / 2  # A_t vs V'(s_{t+1}) - V'(s_t)
    multi = ((a0 + a1 - (1 - 3)) ** 2 + (a1 - (1 - 1.5625)) ** 2) / 2  # sum_{k>=t} A_k vs R - V'(s_t)
    assert single == 0.220703125 and multi == 0.564453125
    for mode, expected in [("single", single), ("single_reversed", single), ("multi", multi),
                           ("multi_reversed", multi), ("mix", (single + multi) / 2)]:
        loss, _ = sql_loss(logits, logits, actions, reward, mode, entropy="tsallis")
        assert loss.item() == pytest.approx(expected), mode
    assert sql_loss(logits, logits, actions, reward, "single")[0].item() != pytest.approx(single)  # Shannon differs
    # dense rewards r = (0.5, -1) enter the targets as under Shannon
    dense = torch.tensor([[0.5, -1.0]])
    single = ((a0 - (0.5 + 1.5625 - 3)) ** 2 + (a1 - (-1 + 1 - 1.5625)) ** 2) / 2
    multi = ((a0 + a1 - (1 + 0.5 - 1 - 3)) ** 2 + (a1 - (-1 + 1 - 1.5625)) ** 2) / 2
    for mode, expected in (("single", single), ("multi", multi)):
        loss, _ = sql_loss(logits, logits, actions, reward, mode, dense, entropy="tsallis")
        assert loss.item() == pytest.approx(expected), mode
    # reversed: the target network's advantage (all Q 0: V = spmax(0, 0, 0) = 1/3) onto the policy's values
    zeros = torch.zeros(1, 2, 3)
    reversed_single = ((-1 / 3 - (1.5625 - 3)) ** 2 + (-1 / 3 - (1 - 1.5625)) ** 2) / 2
    loss, _ = sql_loss(logits, zeros, actions, reward, "single_reversed", entropy="tsallis")
    assert loss.item() == pytest.approx(reversed_single)
    with pytest.raises(ValueError, match="entropy"):
        sql_loss(logits, logits, actions, reward, entropy="renyi")


def test_a_temperature_is_the_rewards_and_prior_divided_by_it():
    # sql's docstring: E[sum r] + alpha W, policy sparsemax(Q / alpha), V = alpha spmax(Q / alpha), is the
    # temperature-1 problem on Q / alpha with every reward / alpha; its squared errors are alpha^2 times smaller
    alpha, generator = 5.0, torch.Generator().manual_seed(0)
    logits, target = (torch.randn(3, 4, 7, generator=generator) * 8 for _ in range(2))
    actions, reward, dense = torch.randint(0, 7, (3, 4), generator=generator), torch.rand(3) * 20, -torch.rand(3, 4) * 4
    q = logits.gather(-1, actions[..., None])[..., 0]
    v, v_target = alpha * spmax(logits / alpha), alpha * spmax(target / alpha)
    next_v = torch.cat([v_target[:, 1:], reward[:, None]], dim=1)
    explicit = ((q - v - (dense + next_v - v_target)) ** 2).mean()  # the single-step error at temperature alpha
    scaled, _ = sql_loss(logits / alpha, target / alpha, actions, reward / alpha, "single", dense / alpha,
                         entropy="tsallis")
    assert (alpha ** 2 * scaled).item() == pytest.approx(explicit.item(), rel=1e-5)
    assert sparsemax(logits / alpha).gt(0).sum() > sparsemax(logits).gt(0).sum()  # a hotter policy: wider support


@pytest.mark.parametrize("mode", ["single", "single_reversed", "multi", "multi_reversed", "mix"])
def test_tsallis_gradient_follows_the_reward(mode):
    # uniform start over 4 actions: sparsemax 1/4 each, V = spmax(0) = 3/8
    for reward, sign in ((10.0, 1), (-10.0, -1)):
        logits = torch.zeros(1, 1, 4, requires_grad=True)
        loss, _ = sql_loss(logits, torch.zeros(1, 1, 4), torch.tensor([[2]]), torch.tensor([reward]), mode,
                           entropy="tsallis")
        loss.backward()
        assert torch.isfinite(logits.grad).all()
        new = logits.detach() - 0.1 * logits.grad
        if "reversed" in mode:
            assert sign * (spmax(new)[0, 0] - 0.375).item() > 0, (mode, reward)
        else:
            assert sign * (sparsemax(new)[0, 0, 2] - 0.25).item() > 0, (mode, reward)


BIAS = {100: 3.0, 101: 2.8, 102: 2.6, 103: 2.4, 104: 2.2}  # support {100, 101, 102}: tau = (8.4 - 1) / 3


@pytest.mark.parametrize("top_k", [0, 256])
def test_the_policy_never_samples_outside_the_support(tiny_gpt2, top_k):
    policy = uniform_policy(tiny_gpt2, mlp_width=64, entropy="tsallis", logit_bias=BIAS, top_k=top_k)
    writer = policy.writer(3000, generator=torch.Generator().manual_seed(0))
    chosen = writer.choose()
    hidden, allowed, prior = writer.states[0]
    probs = policy.probabilities(policy.q_values(hidden[:1], allowed, prior=prior))[0]
    support = set(probs.nonzero().flatten().tolist())
    assert support == {100, 101, 102}  # 103 and 104 are above every other token, yet at probability 0
    assert probs[100].item() == pytest.approx(0.8 / 1.5, abs=1e-3)  # 3 - 7.4 / 3
    assert set(chosen.tolist()) == support
    frequency = torch.bincount(chosen, minlength=policy.vocab_size).float() / len(chosen)
    assert torch.allclose(frequency[[100, 101, 102]], probs[[100, 101, 102]], atol=0.04)
    assert policy.greedy(1).token_ids[0, 0].item() == 100
    # the same Q-values under Shannon sample outside that set most of the time
    shannon = uniform_policy(tiny_gpt2, mlp_width=64, logit_bias=BIAS, top_k=top_k)
    assert (~torch.isin(shannon.sample(500, 1, generator=torch.Generator().manual_seed(0)).token_ids,
                        torch.tensor([100, 101, 102]))).float().mean() > 0.5


def test_with_the_lm_prior_the_support_is_among_the_lm_likeliest_tokens(tiny_gpt2):
    # Q = beta log p_LM + (near 0), and tau >= max Q - 1: only tokens within 1 / beta nats of the LM's top one
    beta = 4.0
    policy = uniform_policy(tiny_gpt2, mlp_width=64, entropy="tsallis", prior_weight=beta)
    rollout = policy.sample(8, 3, generator=torch.Generator().manual_seed(0))
    probs = policy.probabilities(policy.rollout_q_values(rollout))
    support, prior = probs > 0, rollout.prior
    assert (prior[support] > (prior.max(-1, keepdim=True).values - 1 / beta - 1e-3).expand_as(prior)[support]).all()
    assert torch.isfinite(prior.gather(-1, rollout.token_ids[..., None])).all()  # sampled tokens are allowed ones


def test_tsallis_learns_a_synthetic_reward(tiny_gpt2):
    policy = uniform_policy(tiny_gpt2, entropy="tsallis")
    config = SQLConfig(prompt_length=5, steps=100, prompts_per_step=16, lr=1e-2, eval_every=None, seed=0)
    trainer = SQLTrainer(policy, TargetFraction(), config)
    before = trainer.greedy_prompt()[1]
    trainer.train(progress=False)
    after = trainer.greedy_prompt()[1]
    assert sum(t in TARGET for t in before) / 5 <= 0.2 and sum(t in TARGET for t in after) / 5 >= 0.8
    curve = trainer.curve
    assert curve[0]["fraction"] < 0.2 and sum(row["fraction"] for row in curve[-20:]) / 20 > 0.7  # chance: 0.02
    # the logs: Tsallis entropy (at most 1/2), the sparse policy's Shannon entropy, and the support shrinking
    assert 0 <= curve[-1]["entropy"] < curve[0]["entropy"] < 0.5 and "entropy/shannon" in curve[-1]
    assert curve[0]["policy/support"] > 100 and curve[-1]["policy/support"] < 20


def test_a_tsallis_warm_start_stops_at_sparsemax_probability_one_half(tiny_gpt2):
    policy = uniform_policy(tiny_gpt2, mlp_width=64, entropy="tsallis")
    ids = tiny_gpt2.tokenizer.encode(" the movie was", add_special_tokens=False)
    assert policy.warm_start(ids) > 0
    assert policy.greedy(len(ids)).token_ids[0].tolist() == ids
    probs = policy.probabilities(policy.rollout_q_values(policy.teacher_forcing(torch.tensor([ids]))))
    chosen = probs.gather(-1, torch.tensor([ids])[..., None])
    assert (chosen >= 0.5).all() and (chosen < 1).any()  # committed, and still exploring somewhere


def test_the_entropy_flag_reaches_the_policy_config():
    args = build_parser().parse_args(["train", "--task", "sst-2", "--output", "x", "--entropy", "tsallis"])
    assert RLPromptConfig.from_args(args).policy.entropy == "tsallis"
    default = build_parser().parse_args(["train", "--task", "sst-2", "--output", "x"])
    assert RLPromptConfig.from_args(default).policy.entropy == "shannon"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--task", "sst-2", "--output", "x", "--entropy", "renyi"])
