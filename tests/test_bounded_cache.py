"""The example cache stays within its byte budget, dropping the least recently used, with the same scores."""

import torch

from rlprompt_interp.models import load_lm
from rlprompt_interp.rewards import TaskGapReward, PromptBatch
from rlprompt_interp.rewards.prefix_cache import PrefixKVCache
from rlprompt_interp.tasks import get_task

SENTENCES = [f"film number {i} was fun" if i % 2 else f"movie {i} was dull" for i in range(12)]


def batch(rows):
    return {"sentence": [SENTENCES[i] for i in rows], "label": [i % 2 for i in rows]}


def test_example_cache_is_bounded_and_scores_do_not_change():
    lm = load_lm("tiny-gpt2", device="cpu")
    task = get_task("sst-2")
    prompts = PromptBatch([" so", " it"], [lm.tokenizer.encode(" so"), lm.tokenizer.encode(" it")])

    def key_of(row):  # the cache key of one example: what a fresh reward stores after scoring it alone
        alone = TaskGapReward(task, lm)
        alone(prompts, batch([row]))
        return next(iter(alone._examples._entries))

    unbounded = TaskGapReward(task, lm, example_cache_bytes=None)
    unbounded(prompts, batch(range(12)))
    largest = max(unbounded._examples._sizes.values())
    budget = 5 * largest
    bounded = TaskGapReward(task, lm, example_cache_bytes=budget)
    for rows in ([0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1], [2, 3, 4, 5], [10, 11, 0, 1]):
        # the same up to float rounding: the two caches put different examples in one forward
        assert torch.allclose(bounded(prompts, batch(rows)).scores, unbounded(prompts, batch(rows)).scores,
                              rtol=0, atol=1e-5)
        assert bounded._examples.bytes <= budget
    assert len(unbounded._examples) == 12  # the unbounded cache kept every example it saw
    kept = set(bounded._examples._entries)
    assert {key_of(10), key_of(11)} <= kept  # the last call's new examples stay ...
    assert len(kept) <= 5 and key_of(4) not in kept  # ... and the least recently encoded ones went


def test_room_is_made_before_the_new_examples_are_encoded(monkeypatch):
    # an evaluation fills the whole budget with each chunk of a large split (AG News: 7,600 sentences), so
    # evicting only after encoding would hold two chunks at once: twice the budget
    lm = load_lm("tiny-gpt2", device="cpu")
    task = get_task("sst-2")
    prompts = PromptBatch([" so"], [lm.tokenizer.encode(" so")])
    sizing = TaskGapReward(task, lm, example_cache_bytes=None)
    sizing(prompts, batch(range(8)))
    budget = sum(sizing._examples._sizes.values())  # all 8 examples of 4 tokens (+ the template) fit
    reward = TaskGapReward(task, lm, example_cache_bytes=budget)
    held_when_encoding, encoded = [], []
    encode = PrefixKVCache.add

    def spy(cache, items):
        held_when_encoding.append(cache.bytes)
        encoded.append([key for key in items if key not in cache])
        return encode(cache, items)

    monkeypatch.setattr(PrefixKVCache, "add", spy)
    reward(prompts, batch(range(8)))
    reward(prompts, batch([8, 9, 10, 11]))
    sizes = reward._examples._sizes
    new_bytes = sum(sizes[key] for key in encoded[1])
    assert held_when_encoding[0] == 0 and len(encoded[1]) == 4
    assert held_when_encoding[1] + new_bytes <= budget * 1.05  # the peak: the budget, up to the per-token estimate
    assert reward._examples.bytes <= budget
