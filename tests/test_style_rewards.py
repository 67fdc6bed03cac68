"""Style-transfer rewards: bootstrap max, per-input z-scores, content, style, and the combined reward."""

import pytest
import torch

from rlprompt_interp.style.generation import GenerationSettings
from rlprompt_interp.rewards.base import PromptBatch, RewardError
from rlprompt_interp.rewards.content import ContentPreservation, sentence_bleu_scores
from rlprompt_interp.rewards.style import StyleClassifier
from rlprompt_interp.rewards.style_transfer import (StyleTransferReward, bootstrap_max, combine_samples,
                                                    zscore_per_input)


class WordStyle:
    """A stand-in classifier: p(positive) = 0.9 if the text has "great", 0.2 if empty of it."""

    styles = ["negative", "positive"]

    def predict_proba(self, texts, batch_size=64):
        positive = torch.tensor([0.9 if "great" in t else 0.2 for t in texts])
        return torch.stack([1 - positive, positive], dim=-1)


class LengthStyle(WordStyle):
    """p(positive) grows with the text's length: varies across the random tiny model's rewrites."""

    def predict_proba(self, texts, batch_size=64):
        positive = torch.tensor([min(0.95, 0.05 + len(t) / 40) for t in texts])
        return torch.stack([1 - positive, positive], dim=-1)


def test_bootstrap_max_on_hand_made_scores():
    scores = torch.tensor([[1.0, 5.0, 2.0, 8.0, 0.0, 3.0]])
    assert bootstrap_max(scores, 2).tolist() == [[5.0, 8.0]]
    assert bootstrap_max(scores, 3).tolist() == [[5.0, 8.0, 3.0]]
    assert bootstrap_max(scores, 1).tolist() == [[8.0]]
    with pytest.raises(ValueError, match="equal bootstrap groups"):
        bootstrap_max(scores, 4)


def test_combine_samples_is_the_mean_of_group_maxima():
    content = torch.tensor([0.8, 0.2, 0.5, 0.9])
    style = torch.tensor([0.2, 1.0, 0.5, 0.7])
    # per sample 100 * (c + s) / 2 = [50, 60, 50, 80]; groups of 2 -> maxima [60, 80] -> 70
    assert combine_samples(content, style, num_groups=2).item() == pytest.approx(70.0)
    # style weighted 3x: 100 * (c + 3 s) / 4 = [35, 80, 50, 75] -> maxima [80, 75] -> 77.5
    assert combine_samples(content, style, style_weight=3.0, num_groups=2).item() == pytest.approx(77.5)


def test_zscore_per_input_standardises_each_column():
    rewards = torch.tensor([[1.0, 10.0], [3.0, 10.0], [5.0, 40.0]])  # 3 prompts x 2 inputs
    z = zscore_per_input(rewards)
    std0 = torch.tensor([1.0, 3.0, 5.0]).std(unbiased=False)
    assert z[:, 0].tolist() == pytest.approx([(-2 / std0).item(), 0.0, (2 / std0).item()], rel=1e-3)
    std1 = torch.tensor([10.0, 10.0, 40.0]).std(unbiased=False)
    assert z[:, 1].tolist() == pytest.approx([(-10 / std1).item(), (-10 / std1).item(), (20 / std1).item()], rel=1e-3)
    assert z.mean(0).abs().max() < 1e-5  # an easy input (column 1) no longer outweighs a hard one


def test_content_preservation_cosine_and_bleu():
    cosine = ContentPreservation("cosine")
    scores = cosine.scores(["the food was cold", "the food was cold", "the food was cold"],
                           ["the food was cold", "the food was warm", ""])
    assert scores[0] == pytest.approx(1.0, abs=1e-5)
    assert 0.3 < scores[1] < 0.99 and scores[2] == 0.0
    assert sentence_bleu_scores(["the food was cold"], ["the food was cold"]).item() == pytest.approx(1.0)
    bleu = ContentPreservation("bleu")(PromptBatch(["a b c d e", "x"]), {"input": ["a b c d e", "a b c d e"]})
    assert bleu.scores.tolist()[0] == pytest.approx(1.0) and bleu.scores.tolist()[1] < 0.1
    with pytest.raises(RewardError, match="one input per text"):
        cosine(PromptBatch(["a"]), {})


def test_style_classifier_reward_targets():
    reward = StyleClassifier(WordStyle(), target_style="positive")
    out = reward(PromptBatch(["a great meal", "a cold meal"]), {})
    assert out.scores.tolist() == pytest.approx([0.9, 0.2])
    assert out.logs["style/accuracy"] == 0.5
    assert StyleClassifier(WordStyle()).probabilities(["great", "great"], [0, 1]).tolist() == pytest.approx([0.1, 0.9])
    with pytest.raises(RewardError, match="not one of the classifier's styles"):
        StyleClassifier(WordStyle(), target_style="formal")


def test_style_transfer_reward_end_to_end(tiny_gpt2):
    settings = GenerationSettings(num_samples=4, top_k=50, length_ratio=2.0)
    reward = StyleTransferReward(tiny_gpt2, StyleClassifier(LengthStyle()), content=ContentPreservation("bleu"),
                                 target_style=1, settings=settings, num_bootstraps=2)
    batch = {"input": ["the movie was bad", "awful acting"]}
    prompts = PromptBatch(["great great great", "terrible", "no"])
    out = reward(prompts, batch)
    assert out.scores.shape == (3,)
    assert out.scores.abs().sum() > 0 and out.scores.sum().abs() < 1e-4  # z-scored per input, then averaged
    assert 0.0 <= out.logs["style"] <= 1.0 and 0.0 <= out.logs["content"] <= 1.0
    single = reward(PromptBatch(["great"]), batch)  # one prompt: nothing to standardise against, raw scale
    assert 0.0 <= single.scores.item() <= 100.0
    with pytest.raises(RewardError, match="batch\\['input'\\]"):
        reward(prompts, {})
    with pytest.raises(ValueError, match="bootstrap groups"):
        StyleTransferReward(tiny_gpt2, StyleClassifier(WordStyle()), target_style=1, settings=settings,
                            num_bootstraps=3)


def test_style_transfer_reward_composes_with_a_weighted_term(tiny_gpt2):
    from rlprompt_interp.rewards.base import FunctionReward

    settings = GenerationSettings(num_samples=2, length_ratio=1.0)
    base = StyleTransferReward(tiny_gpt2, StyleClassifier(WordStyle()), content=ContentPreservation("bleu"),
                               target_style=1, settings=settings, num_bootstraps=1, zscore=False)
    length = FunctionReward(lambda prompts, **batch: [-len(p) for p in prompts], name="length")
    total = base + 0.5 * length
    prompts = PromptBatch(["great", "great fun"])
    batch = {"input": ["bad movie"]}
    alone = base(prompts, batch).scores  # the call counter moves the seed: compare with the next call's sampling
    base.calls -= 1
    combined = total(prompts, batch).scores
    assert combined.tolist() == pytest.approx((alone + 0.5 * torch.tensor([-5.0, -9.0])).tolist())
