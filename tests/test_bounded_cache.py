"""The example cache stays within its byte budget, dropping the least recently used, with the same scores."""

import torch

from rlprompt_interp.models import load_lm
from rlprompt_interp.rewards import TaskGapReward, PromptBatch
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
