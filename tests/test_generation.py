"""Prompted generation: cut at the closing quote, length cap, sample count, batching with left padding."""

import pytest
import torch
from transformers import LogitsProcessor, LogitsProcessorList

from rlprompt_interp.style.generation import GenerationSettings, cut_output, generate_rewrites, length_caps


class ForceTokens(LogitsProcessor):
    """Make the model emit ``script`` token by token (then keep repeating its last token)."""

    def __init__(self, script, prompt_width):
        self.script, self.prompt_width = script, prompt_width

    def __call__(self, input_ids, scores):
        step = input_ids.shape[1] - self.prompt_width
        token = self.script[min(step, len(self.script) - 1)]
        forced = torch.full_like(scores, float("-inf"))
        forced[:, token] = 0.0
        return forced


def ids(lm, text):
    return lm.tokenizer.encode(text, add_special_tokens=False)


def prompt_width(lm, prompt, inputs):
    texts = [f'{prompt} "{x}" "'.lstrip() for x in inputs]
    return max(len(ids(lm, t)) for t in texts)


def test_cut_output():
    assert cut_output(' The food was great" and more "x', lowercase=True) == "the food was great"
    assert cut_output("no quote here ") == "no quote here"
    assert cut_output('" starts with the quote') == ""


def test_output_is_cut_at_the_closing_quote(tiny_gpt2):
    inputs = ["the movie was bad"]
    script = ids(tiny_gpt2, " the movie was great") + ids(tiny_gpt2, '"') + ids(tiny_gpt2, " but boring")
    processor = LogitsProcessorList([ForceTokens(script, prompt_width(tiny_gpt2, "review", inputs))])
    out = generate_rewrites(tiny_gpt2, "review", inputs, logits_processor=processor,
                            settings=GenerationSettings(num_samples=1, greedy=True, length_ratio=3.0))
    assert out == [["the movie was great"]]


def test_length_cap_and_lowercase(tiny_gpt2):
    inputs = ["bad movie"]  # 3 tokens of the tiny tokenizer -> cap ceil(2.0 * 3) = 6
    settings = GenerationSettings(num_samples=1, greedy=True, lowercase=True, length_ratio=2.0)
    assert length_caps(tiny_gpt2, inputs, settings) == [6]
    words = ids(tiny_gpt2, " Great fun and really good acting and more fun")  # no quote: runs into the cap
    processor = LogitsProcessorList([ForceTokens(words, prompt_width(tiny_gpt2, "", inputs))])
    out = generate_rewrites(tiny_gpt2, "", inputs, logits_processor=processor, settings=settings)
    assert out == [["great fun and really"]]  # " Great" is 3 tokens, then " fun", " and", " really"


def test_sample_count_and_reproducibility(tiny_gpt2):
    inputs = ["the plot was sad", "awful", "really good acting and beautiful story"]
    settings = GenerationSettings(num_samples=5, top_k=20, seed=3, batch_size=2)
    first = generate_rewrites(tiny_gpt2, "great", inputs, settings=settings)
    assert [len(samples) for samples in first] == [5, 5, 5]
    assert all(isinstance(s, str) and '"' not in s for samples in first for s in samples)
    assert len({s for samples in first for s in samples}) > 3  # sampling gives different rewrites
    assert generate_rewrites(tiny_gpt2, "great", inputs, settings=settings) == first
    # per-input prompts: one prompt per input is accepted; a wrong count is not
    assert len(generate_rewrites(tiny_gpt2, ["a", "b", "c"], inputs, settings=settings)) == 3
    with pytest.raises(ValueError, match="one prompt or one per input"):
        generate_rewrites(tiny_gpt2, ["a", "b"], inputs, settings=settings)


def test_batched_greedy_matches_one_at_a_time(tiny_gpt2):
    """Left padding must not change what a row generates."""
    inputs = ["bad", "the acting was really very good and the story beautiful", "sad film"]
    settings = GenerationSettings(num_samples=1, greedy=True, length_ratio=2.0)
    batched = generate_rewrites(tiny_gpt2, "positive", inputs, settings=settings)
    alone = [generate_rewrites(tiny_gpt2, "positive", [x], settings=settings)[0] for x in inputs]
    assert batched == alone


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="num_samples"):
        GenerationSettings(num_samples=0)
    with pytest.raises(ValueError, match="greedy"):
        GenerationSettings(num_samples=2, greedy=True)
