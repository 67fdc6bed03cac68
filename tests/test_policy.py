"""LMAdaptorPolicy: frozen LM, trainable MLP, near-uniform start, sampling constraints, KV-cached rollouts."""

import math

import pytest
import torch

from rlprompt_interp.models import load_lm
from rlprompt_interp.policies import LMAdaptorPolicy, filter_top_k_top_p


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture
def lm():
    return load_lm("tiny-llama", device="cpu")


def test_only_the_mlp_trains_and_the_start_is_near_uniform(lm):
    policy = LMAdaptorPolicy(lm, mlp_width=64)
    trainable = {name for name, p in policy.named_parameters() if p.requires_grad}
    assert trainable and all(name.startswith("mlp.") for name in trainable)
    rollout = policy.sample(4, 3, generator=torch.Generator().manual_seed(0))
    logits = policy.q_values(rollout.hidden)
    allowed = torch.isfinite(logits[0, 0]).sum().item()
    entropy = -(logits.softmax(-1) * logits.log_softmax(-1)).nan_to_num().sum(-1)
    assert entropy.min().item() > math.log(allowed) - 1e-3  # uniform over the allowed tokens
    assert allowed == len(lm.tokenizer) - len(set(lm.tokenizer.all_special_ids))


def test_teacher_forcing_matches_the_sampled_states(lm):
    policy = LMAdaptorPolicy(lm, mlp_width=64, condition="the movie")
    rollout = policy.sample(3, 4, generator=torch.Generator().manual_seed(1))
    forced = policy.teacher_forcing(rollout.token_ids)
    torch.testing.assert_close(forced.hidden, rollout.hidden, atol=1e-5, rtol=1e-5)
    # and the same as one plain forward over condition + tokens
    ids = torch.cat([torch.tensor([policy.condition_ids] * 3), rollout.token_ids[:, :-1]], dim=1)
    plain = lm.model.base_model(input_ids=ids).last_hidden_state[:, -4:]
    torch.testing.assert_close(forced.hidden, plain, atol=1e-5, rtol=1e-5)


def test_greedy_is_the_argmax_and_deterministic(lm):
    policy = LMAdaptorPolicy(lm, mlp_width=64)
    with torch.no_grad():
        policy.mlp[2].bias.copy_(lm.model.get_output_embeddings().weight[123] * 50)
    first, second = policy.greedy(4), policy.greedy(4)
    assert first.token_ids.tolist() == second.token_ids.tolist() == [[123] * 4]
    assert policy.decode(first.token_ids)[0] == lm.tokenizer.decode([123] * 4)


def test_logit_bias_special_tokens_and_top_k(lm):
    policy = LMAdaptorPolicy(lm, mlp_width=64, logit_bias={42: 100.0})
    assert (policy.sample(5, 3, generator=torch.Generator().manual_seed(0)).token_ids == 42).all()
    policy = LMAdaptorPolicy(lm, mlp_width=64, logit_bias={t: -1e9 for t in range(50, len(lm.tokenizer))})
    ids = policy.sample(8, 4, generator=torch.Generator().manual_seed(0)).token_ids
    special = set(lm.tokenizer.all_special_ids)
    assert ids.max() < 50 and not special & set(ids.flatten().tolist())
    logits = torch.tensor([[3.0, 1.0, 2.0, 0.0]])
    assert torch.isinf(filter_top_k_top_p(logits, top_k=2)).tolist() == [[False, True, False, True]]
    kept = torch.isfinite(filter_top_k_top_p(logits, top_p=0.7))  # 0.67 + 0.24 crosses 0.7
    assert kept.tolist() == [[True, False, True, False]]


def test_fluent_constraint_keeps_the_lms_own_top_k(lm):
    policy = LMAdaptorPolicy(lm, mlp_width=64, fluent_top_k=5)
    rollout = policy.sample(4, 3, generator=torch.Generator().manual_seed(2))
    own = policy.head(rollout.hidden) + policy.bias  # the frozen LM's own logits
    top = own.topk(5, dim=-1).indices
    assert (top == rollout.token_ids[..., None]).any(-1).all()
    assert rollout.allowed.sum(-1).eq(5).all()
    assert torch.isinf(policy.q_values(rollout.hidden, rollout.allowed)).sum(-1).eq(policy.vocab_size - 5).all()


def test_bad_options_are_refused(lm):
    with pytest.raises(ValueError, match="outside the vocabulary"):
        LMAdaptorPolicy(lm, logit_bias={10**6: 1.0})
    with pytest.raises(ValueError, match="encoder-decoder"):
        LMAdaptorPolicy(load_lm("tiny-t5", device="cpu"))
