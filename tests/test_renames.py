"""Names that say what they hold; the older ones still work where users may have used them, each with a
warning that names its replacement."""

import pytest

from rlprompt_interp.notices import RLPromptWarning


def test_the_gap_reward_answers_to_its_old_names_with_a_warning():
    import rlprompt_interp.rewards as rewards
    from rlprompt_interp.rewards.classification import TaskGapReward

    for old in ("ClassificationReward", "TaskAccuracy"):
        with pytest.warns(RLPromptWarning, match=f"{old} is deprecated; use TaskGapReward"):
            assert getattr(rewards, old) is TaskGapReward
    with pytest.warns(RLPromptWarning, match="ClassificationReward is deprecated"):
        from rlprompt_interp.rewards.classification import ClassificationReward  # noqa: F401
    assert "ClassificationReward" not in rewards.__all__
    with pytest.raises(AttributeError):
        rewards.NoSuchReward  # noqa: B018


def test_the_losses_have_one_name():
    from rlprompt_interp.algorithms import LOSSES, SQLConfig, sql

    assert LOSSES == ("mix", *sql.MIXED_LOSSES) and SQLConfig.__dataclass_fields__["loss"].metadata["choices"] == LOSSES
    with pytest.warns(RLPromptWarning, match="MODES is deprecated; use LOSSES"):
        assert sql.MODES == LOSSES


def test_trl_agents_take_the_names_every_agent_uses(recwarn):
    from rlprompt_interp.agents import get_agent

    with pytest.warns(RLPromptWarning, match="'max_seconds' is deprecated; use 'max_minutes'"):
        agent = get_agent("grpo", max_seconds=90, beta=0.01)
    assert agent.config.max_minutes == 1.5 and agent.config.kl_beta == 0.01
    assert any("'beta' is deprecated; use 'kl_beta'" in str(w.message) for w in recwarn)
    assert get_agent("rloo").config.prompts_per_step == get_agent("rlprompt").config.prompts_per_step == 8


def test_the_continuous_agents_old_flag_spelling_still_works():
    from rlprompt_interp.cli import build_parser

    with pytest.warns(RLPromptWarning, match="--batch-size-train is deprecated; use --batch-size"):
        args = build_parser().parse_args(["train", "--agent", "soft-prompt", "--task", "sst-2", "--output", "o",
                                          "--batch-size-train", "4"])
    assert args.batch_size == 4


def test_models_split_by_concern_keeps_its_imports():
    from rlprompt_interp import models
    from rlprompt_interp.models import cache, dtypes, embedded, hub, random_models

    assert models.load_lm is cache.load_lm and models.resolve_dtype is dtypes.resolve_dtype
    assert models.EMBEDDED_MODELS is embedded.EMBEDDED_MODELS and models.default_model is hub.default_model
    assert models.random_shaped_model is random_models.random_shaped_model
    assert set(models.__all__) <= set(dir(models))
