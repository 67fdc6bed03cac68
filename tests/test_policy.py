"""LMAdaptorPolicy: frozen LM, trainable MLP, near-uniform start, sampling constraints, KV-cached rollouts."""

import math

import pytest
import torch

from rlprompt_interp.models import load_lm
from rlprompt_interp.policies import LMAdaptorPolicy, filter_top_k_top_p


# RLPrompt's policy (uniform start, every token, repeats allowed), which these tests were written for;
# the defaults add the LM prior, whole words and no repeats.
RLPROMPT_POLICY = dict(prior_weight=0.0, action_space="all", no_repeat=0)


def uniform_policy(lm, **options) -> LMAdaptorPolicy:
    return LMAdaptorPolicy(lm, **{**RLPROMPT_POLICY, **options})


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture
def lm():
    return load_lm("tiny-llama", device="cpu")


def test_only_the_mlp_trains_and_the_start_is_near_uniform(lm):
    policy = uniform_policy(lm, mlp_width=64)
    trainable = {name for name, p in policy.named_parameters() if p.requires_grad}
    assert trainable and all(name.startswith("mlp.") for name in trainable)
    rollout = policy.sample(4, 3, generator=torch.Generator().manual_seed(0))
    logits = policy.q_values(rollout.hidden)
    allowed = torch.isfinite(logits[0, 0]).sum().item()
    entropy = -(logits.softmax(-1) * logits.log_softmax(-1)).nan_to_num().sum(-1)
    assert entropy.min().item() > math.log(allowed) - 1e-3  # uniform over the allowed tokens
    assert allowed == len(lm.tokenizer) - len(set(lm.tokenizer.all_special_ids))


def test_teacher_forcing_matches_the_sampled_states(lm):
    policy = uniform_policy(lm, mlp_width=64, condition="the movie")
    rollout = policy.sample(3, 4, generator=torch.Generator().manual_seed(1))
    forced = policy.teacher_forcing(rollout.token_ids)
    torch.testing.assert_close(forced.hidden, rollout.hidden, atol=1e-5, rtol=1e-5)
    # and the same as one plain forward over condition + tokens
    ids = torch.cat([torch.tensor([policy.condition_ids] * 3), rollout.token_ids[:, :-1]], dim=1)
    plain = lm.model.base_model(input_ids=ids).last_hidden_state[:, -4:]
    torch.testing.assert_close(forced.hidden, plain, atol=1e-5, rtol=1e-5)


def test_greedy_is_the_argmax_and_deterministic(lm):
    policy = uniform_policy(lm, mlp_width=64)
    with torch.no_grad():
        policy.mlp[2].bias.copy_(lm.model.get_output_embeddings().weight[123] * 50)
    first, second = policy.greedy(4), policy.greedy(4)
    assert first.token_ids.tolist() == second.token_ids.tolist() == [[123] * 4]
    assert policy.decode(first.token_ids)[0] == lm.tokenizer.decode([123] * 4)


def test_logit_bias_special_tokens_and_top_k(lm):
    policy = uniform_policy(lm, mlp_width=64, logit_bias={42: 100.0})
    assert (policy.sample(5, 3, generator=torch.Generator().manual_seed(0)).token_ids == 42).all()
    policy = uniform_policy(lm, mlp_width=64, logit_bias={t: -1e9 for t in range(50, len(lm.tokenizer))})
    ids = policy.sample(8, 4, generator=torch.Generator().manual_seed(0)).token_ids
    special = set(lm.tokenizer.all_special_ids)
    assert ids.max() < 50 and not special & set(ids.flatten().tolist())
    logits = torch.tensor([[3.0, 1.0, 2.0, 0.0]])
    assert torch.isinf(filter_top_k_top_p(logits, top_k=2)).tolist() == [[False, True, False, True]]
    kept = torch.isfinite(filter_top_k_top_p(logits, top_p=0.7))  # 0.67 + 0.24 crosses 0.7
    assert kept.tolist() == [[True, False, True, False]]


def test_fluent_constraint_keeps_the_lms_own_top_k(lm):
    policy = uniform_policy(lm, mlp_width=64, fluent_top_k=5)
    rollout = policy.sample(4, 3, generator=torch.Generator().manual_seed(2))
    own = policy.head(rollout.hidden) + policy.bias  # the frozen LM's own logits
    top = own.topk(5, dim=-1).indices
    assert (top == rollout.token_ids[..., None]).any(-1).all()
    assert rollout.allowed.sum(-1).eq(5).all()
    assert torch.isinf(policy.q_values(rollout.hidden, rollout.allowed)).sum(-1).eq(policy.vocab_size - 5).all()


def test_bad_options_are_refused(lm):
    with pytest.raises(ValueError, match="outside the vocabulary"):
        uniform_policy(lm, logit_bias={10**6: 1.0})
    with pytest.raises(ValueError, match="encoder-decoder"):
        uniform_policy(load_lm("tiny-t5", device="cpu"))


def test_the_lm_prior_starts_as_the_lm_itself(lm):
    policy = uniform_policy(lm, mlp_width=64, prior_weight=1.0, condition="the movie")
    rollout = policy.sample(3, 4, generator=torch.Generator().manual_seed(0))
    own = (policy.head(rollout.hidden).float() + policy.bias).log_softmax(-1)  # the frozen LM's distribution
    start = policy.rollout_q_values(rollout).log_softmax(-1)
    allowed = torch.isfinite(own)
    torch.testing.assert_close(start.exp(), own.exp(), atol=1e-4, rtol=0)
    assert torch.equal(torch.isfinite(start), allowed)
    # the dense rewards are beta * log p_LM of the written tokens
    chosen = own.gather(-1, rollout.token_ids[..., None]).squeeze(-1)
    torch.testing.assert_close(policy.prior_rewards(rollout), chosen)
    half = uniform_policy(lm, mlp_width=64, prior_weight=0.5, condition="the movie")
    torch.testing.assert_close(half.rollout_q_values(half.teacher_forcing(rollout.token_ids)).softmax(-1),
                               (0.5 * own).softmax(-1), atol=1e-4, rtol=0)
    assert uniform_policy(lm, mlp_width=64).prior_rewards(rollout) is None


def test_word_level_actions_admit_no_fragment():
    from rlprompt_interp.policies.action_space import is_word_token, vocabulary_mask
    from rlprompt_interp.tiny import build_test_tokenizer

    for fragment in [" surpr", " interpre", " psychiat", " neighb", " affili", " includadays", "ing", "Private",
                     " 1999", " --", " Private2"]:
        assert not is_word_token(fragment), fragment
    for word in [" great", " movie", " Private", " perspective", " don't", " well-known"]:
        assert is_word_token(word), word
    tokenizer = build_test_tokenizer()
    mask = vocabulary_mask(tokenizer, "words")
    texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
    assert mask.any() and all(is_word_token(texts[i]) for i in mask.nonzero().flatten().tolist())
    punct = vocabulary_mask(tokenizer, "words+punctuation")
    assert (punct & ~mask).any() and not (mask & ~punct).any()


def test_action_space_and_no_repeat_constrain_sampling(lm):
    policy = uniform_policy(lm, mlp_width=64, action_space="words", no_repeat=1)
    rollout = policy.sample(16, 5, generator=torch.Generator().manual_seed(0))
    assert policy.space[rollout.token_ids].all()
    assert (rollout.token_ids[:, 1:] != rollout.token_ids[:, :-1]).all()
    # the ban is part of the action space, so the loss's Q-values see it too, and teacher forcing rebuilds it
    q = policy.rollout_q_values(rollout)
    assert torch.isinf(q[:, 1:].gather(-1, rollout.token_ids[:, :-1, None])).all()
    forced = policy.teacher_forcing(rollout.token_ids)
    assert torch.equal(forced.allowed, rollout.allowed)
    with pytest.raises(ValueError, match="no_repeat"):
        uniform_policy(lm, no_repeat=-1)


def test_a_warm_start_writes_the_given_prompt_first(lm):
    policy = uniform_policy(lm, mlp_width=64, top_k=50)
    ids = lm.tokenizer.encode(" the movie was great", add_special_tokens=False)
    steps = policy.warm_start(ids)
    assert steps > 0
    assert policy.greedy(len(ids)).token_ids[0].tolist() == ids
    samples = policy.sample(32, len(ids), generator=torch.Generator().manual_seed(0)).token_ids
    assert (samples == torch.tensor(ids)).all(-1).any()  # sampling still writes it, and still explores
    assert not (samples == torch.tensor(ids)).all(-1).all()
    words = uniform_policy(lm, mlp_width=64, action_space="words")
    with pytest.raises(ValueError, match="outside the policy's action space"):
        words.warm_start(lm.tokenizer.encode("ing", add_special_tokens=False))


def test_lm_guided_exploration_writes_some_rows_from_the_lms_top_tokens(lm):
    policy = uniform_policy(lm, mlp_width=64, explore_fraction=0.5, explore_top_k=3, top_k=None)
    rollout = policy.sample(8, 4, generator=torch.Generator().manual_seed(0))
    own = policy.head(rollout.hidden) + policy.bias
    in_top = (own.topk(3, dim=-1).indices == rollout.token_ids[..., None]).any(-1)  # [N, L]
    assert in_top[4:].all() and not in_top[:4].all()  # behaviour rows from the LM's top-3; policy rows anywhere
    assert rollout.allowed is None  # the action space, and so the loss's Q-values, stay unconstrained
    assert policy.greedy(4).token_ids.shape == (1, 4)  # greedy prompts come from the policy alone
    with pytest.raises(ValueError, match="explore_fraction"):
        uniform_policy(lm, explore_fraction=1.5)


def test_lm_behaviour_rows_follow_the_lm_while_the_policy_rows_follow_the_policy(lm):
    policy = uniform_policy(lm, mlp_width=64, top_k=50, explore_fraction=0.5, explore_with="lm")
    ids = lm.tokenizer.encode(" the movie was great", add_special_tokens=False)
    policy.warm_start(ids, min_prob=0.9)  # the trained policy now writes this prompt most of the time
    rollout = policy.sample(64, len(ids), generator=torch.Generator().manual_seed(0))
    written = (rollout.token_ids == torch.tensor(ids)).all(-1)
    assert written[:32].float().mean() > 0.5  # policy rows: at least 0.9 ** 4 = 0.66 expected
    assert not written[32:].any()  # behaviour rows: the untrained LM's distribution, ~1/50 a token at best
    # the behaviour distribution by hand: the LM's softmax over its 50 likeliest allowed tokens
    hidden, allowed = rollout.hidden[:2, 0], policy.space.expand(2, -1)  # RLPrompt's policy bans nothing more
    probs = policy.behaviour_probabilities(hidden, policy.q_values(hidden, allowed))
    lm_logits = (policy.head(hidden).float() + policy.bias).masked_fill(~allowed, float("-inf"))
    top = lm_logits.topk(50, dim=-1)
    assert torch.allclose(probs.sum(-1), torch.ones(2)) and ((probs > 0).sum(-1) == 50).all()
    assert torch.allclose(probs.gather(-1, top.indices), top.values.softmax(-1), atol=1e-6)
    with pytest.raises(ValueError, match="explore_with"):
        uniform_policy(lm, explore_with="greedy")


def test_writing_prompts_reads_no_deprecated_cache_name(lm):
    # transformers 5.24 renamed a forward's returned past_key_values to cache and warns, once a process, through its
    # logger on each read of the old name; the policy's sampling and teacher forcing must not read it
    import logging

    import transformers

    messages = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())
    library = logging.getLogger("transformers")
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_warning()
    library.addHandler(handler)
    logging.Logger.warning_once.cache_clear()
    try:
        policy = LMAdaptorPolicy(lm, mlp_width=16)
        rollout = policy.sample(2, 3, generator=torch.Generator().manual_seed(0))
        policy.teacher_forcing(rollout.token_ids)
    finally:
        library.removeHandler(handler)
        transformers.logging.set_verbosity(verbosity)
    assert not [message for message in messages if "deprecated" in message], messages
