"""The perplexity reward is minus the shared perplexity computation; rewards compose by weights."""

import pytest
import torch

from rlprompt_interp.agents.rlprompt import build_reward, parse_reward_spec
from rlprompt_interp.models import load_lm
from rlprompt_interp.notices import RLPromptWarning
from rlprompt_interp.perplexity import log_perplexity, perplexity
from rlprompt_interp.rewards import Perplexity, PromptBatch, RewardError, TaskGapReward
from rlprompt_interp.tasks import get_task

TEXTS = ["the movie was great", "great great great", "no yes no"]


def test_reward_is_minus_perplexity():
    lm = load_lm("tiny-gpt2", device="cpu")
    out = Perplexity(lm)(PromptBatch(TEXTS), {})
    torch.testing.assert_close(out.scores, -perplexity(lm, TEXTS), atol=1e-4, rtol=1e-5)
    assert out.logs["perplexity"] == pytest.approx(perplexity(lm, TEXTS).mean().item(), rel=1e-5)
    out = Perplexity(lm, log=True)(PromptBatch(TEXTS), {})
    torch.testing.assert_close(out.scores, -log_perplexity(lm, TEXTS), atol=1e-5, rtol=1e-5)


def test_weighted_sum_of_accuracy_and_perplexity(sst_files):
    lm = load_lm("tiny-gpt2", device="cpu")
    task = get_task("sst-2", data_dir=sst_files)
    accuracy, ppl = TaskGapReward(task, lm), Perplexity(lm)
    batch = {"sentence": ["good fun", "awful"], "label": [1, 0]}
    prompts = PromptBatch(TEXTS)
    combined = (accuracy + 0.01 * ppl)(prompts, batch)
    expected = accuracy(prompts, batch).scores + 0.01 * ppl(prompts, batch).scores
    torch.testing.assert_close(combined.scores, expected)
    assert {"accuracy", "perplexity"} <= set(combined.logs)
    # the same from the CLI's spec string
    spec = build_reward("gap=1,perplexity=0.01", task, lm, scorer="tiny-gpt2")
    torch.testing.assert_close(spec(prompts, batch).scores, expected, atol=1e-3, rtol=1e-5)
    assert {"gap/score", "accuracy"} <= set(spec(prompts, batch).logs)  # the gap reward is logged apart from accuracy


def test_the_old_name_of_the_gap_reward_still_works_with_a_warning():
    with pytest.warns(RLPromptWarning, match="'accuracy' is deprecated"):
        assert parse_reward_spec("accuracy=1,perplexity=0.5") == [("gap", 1.0), ("perplexity", 0.5)]


def prompt_lengths(prompts, **batch):
    return [float(len(p)) for p in prompts]


def test_reward_functions_from_the_command_line(sst_files):
    lm = load_lm("tiny-gpt2", device="cpu")
    reward = build_reward("", None, lm, functions=[f"{__name__}:prompt_lengths=0.5"])
    assert reward(PromptBatch(["ab", "abcd"]), {}).scores.tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="unknown reward"):
        parse_reward_spec("gap=1,fluency=2")
    with pytest.raises(RewardError, match="no function"):
        build_reward("", None, lm, functions=[f"{__name__}:missing"])
