"""The classification gap reward: hand-computed values, and the cached batched path against full forwards."""

import pytest
import torch

from rlprompt_interp.models import load_lm
from rlprompt_interp.rewards import TaskGapReward, PromptBatch, gap_reward
from rlprompt_interp.scoring import next_token_logits, segment_example
from rlprompt_interp.tasks import get_task


pytestmark = pytest.mark.usefixtures("single_thread")

SENTENCES = ["the movie was great fun", "an awful boring film", "really good acting", "sad and boring",
             "a long, long and winding plot that goes nowhere at all"]


def test_gap_reward_hand_computed():
    # two classes: softmax([log 3, 0]) = [0.75, 0.25]
    logits = torch.tensor([[[torch.log(torch.tensor(3.0)), 0.0]], [[0.0, torch.log(torch.tensor(3.0))]]])
    labels = torch.tensor([0])
    reward, correct = gap_reward(logits, labels, correct_coef=200, incorrect_coef=180)
    assert correct.tolist() == [[True], [False]]
    assert reward[0, 0].item() == pytest.approx(0.5 * 200)
    assert reward[1, 0].item() == pytest.approx(-0.5 * 180)
    # three classes: gap against the largest other class
    logits = torch.log(torch.tensor([[0.2, 0.5, 0.3]]))
    reward, correct = gap_reward(logits, torch.tensor([2]))
    assert reward.item() == pytest.approx((0.3 - 0.5) * 180) and not correct.item()


def test_class_balanced_mean_weighs_each_class_alike():
    from rlprompt_interp.rewards.classification import class_balanced_mean

    values = torch.tensor([[1.0, 2.0, 3.0, 10.0], [0.0, 0.0, 0.0, 4.0]])
    labels = torch.tensor([0, 0, 0, 2])  # class 1 absent: the mean over classes 0 and 2
    assert class_balanced_mean(values, labels).tolist() == pytest.approx([(2.0 + 10.0) / 2, (0.0 + 4.0) / 2])
    assert values.mean(-1).tolist() == pytest.approx([4.0, 1.0])  # what the plain mean gives


def test_a_balanced_gap_reward_scores_a_skewed_batch_by_its_classes(sst_files):
    lm = load_lm("tiny-gpt2", device="cpu")
    task = get_task("sst-2", data_dir=sst_files)
    prompts = PromptBatch([" great", " bad movie"], [lm.tokenizer.encode(t, add_special_tokens=False)
                                                     for t in (" great", " bad movie")])
    batch = {"sentence": SENTENCES[:4], "label": [1, 0, 0, 0]}  # three of class 0, one of class 1
    plain = TaskGapReward(task, lm, balance_classes=False)(prompts, batch)
    balanced = TaskGapReward(task, lm)(prompts, batch)  # the default, as train's --balance-classes
    logits = TaskGapReward(task, lm).verbalizer_logits(prompts.token_ids,
                                                              [{"sentence": s} for s in batch["sentence"]])
    rewards, _ = gap_reward(logits, torch.tensor(batch["label"]))  # [2 prompts, 4 examples]
    assert plain.scores.tolist() == pytest.approx(rewards.mean(-1).tolist(), rel=1e-5)
    # class 1 (example 0) counts as much as class 0 (examples 1-3)
    expected = (rewards[:, 0] + rewards[:, 1:].mean(-1)) / 2
    assert balanced.scores.tolist() == pytest.approx(expected.tolist(), rel=1e-5)
    assert not torch.allclose(expected, rewards.mean(-1))  # the two means differ on this batch
    assert balanced.logs["accuracy"] == plain.logs["accuracy"]  # accuracy stays the share of examples


def full_forward(lm, task, prompt_ids, sentences):
    sequences = []
    for ids in prompt_ids:
        for sentence in sentences:
            before, after = task.template.split({"sentence": sentence})
            b, a = segment_example(lm, before, after, ids)
            sequences.append(b + list(ids) + a)
    return next_token_logits(lm, sequences, task.verbalizer_ids(lm.tokenizer)).view(len(prompt_ids), len(sentences), -1)


@pytest.mark.parametrize("spec", ["tiny-gpt2", "tiny-llama"])
@pytest.mark.parametrize("template, layout", [("{sentence} {prompt}", "example_first"),
                                              ("{sentence}{prompt}", "example_first"),
                                              ("Review: {sentence} It was{prompt}", "example_first"),
                                              ("{prompt} Review: {sentence} It was", "prompt_first"),
                                              ("A {sentence} B{prompt} C {sentence}", "mixed")])
def test_cached_path_matches_full_forward(spec, template, layout, sst_files):
    lm = load_lm(spec, device="cpu")
    task = get_task("sst-2", data_dir=sst_files, template=template)
    reward = TaskGapReward(task, lm, batch_size=5)  # several chunks of pairs
    assert reward.layout == layout
    generator = torch.Generator().manual_seed(0)
    prompts = [torch.randint(5, len(lm.tokenizer), (n,), generator=generator).tolist() for n in (3, 3, 1)]
    prompts.append(lm.tokenizer.encode(" great great", add_special_tokens=False))  # starts with a space token
    prompts.append([])  # no prompt: with nothing after the slot, the logits after the example's own last token
    prompts += [prompts[0][:2] + prompts[1][:1], prompts[0] + prompts[2], prompts[0][:1]]  # begin alike: one trie
    examples = [{"sentence": s} for s in SENTENCES]
    expected = full_forward(lm, task, prompts, SENTENCES)
    for _ in range(2):  # the second call reuses the cached examples: they must be intact
        got = reward.verbalizer_logits(prompts, examples)
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    # plain arange positions would differ: the cache really carries the cumsum numbering
    assert expected.std() > 0


@pytest.mark.parametrize("spec", ["tiny-gpt2", "tiny-llama"])
def test_suffixes_that_begin_alike_are_computed_once(spec):
    from rlprompt_interp.rewards.prefix_cache import PrefixKVCache, cached_next_token_logits, suffix_tries

    # three suffixes of prefix "a": [5, 6, 7], [5, 6, 8], [5] -> nodes 5, 6, 7, 8; one of "b": [5, 6]
    keys, suffixes = ["a", "a", "b", "a", "a"], [[5, 6, 7], [5, 6, 8], [5, 6], [5], []]
    tries = suffix_tries(keys, suffixes, max_nodes=64)
    assert [(t.key, t.tokens, t.parents, t.depths) for t in tries] == [
        ("a", [5, 6, 7, 8], [-1, 0, 1, 1], [0, 1, 2, 2]), ("b", [5, 6], [-1, 0], [0, 1])]
    assert tries[0].pairs == {3: 0, 0: 2, 1: 3} and tries[1].pairs == {2: 1}  # the empty suffix has no node
    assert tries[0].ancestors().int().tolist() == [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 0, 1]]
    # a full trie starts another: [5] and [5, 6, 7] fill 3 nodes, [5, 6, 8] goes to a second
    assert [t.tokens for t in suffix_tries(keys, suffixes, max_nodes=3)] == [[5, 6, 7], [5, 6, 8], [5, 6]]

    lm = load_lm(spec, device="cpu")
    cache = PrefixKVCache(lm)
    prefixes = {"a": lm.tokenizer.encode("the movie was", add_special_tokens=False),
                "b": lm.tokenizer.encode("boring", add_special_tokens=False)}
    cache.add(prefixes)
    verbalizers = [7, 9]
    expected = next_token_logits(lm, [prefixes[k] + s for k, s in zip(keys, suffixes)], verbalizers)
    for max_nodes, batch_size in ((64, 128), (3, 2), (1, 1)):  # one forward; split tries and batches
        got = cached_next_token_logits(cache, keys, suffixes, verbalizers, batch_size=batch_size, max_nodes=max_nodes)
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    # bf16 (the fast path on CPUs with bf16 instructions, emulated elsewhere): the mask is built in the model's dtype
    lm = load_lm(spec, device="cpu", dtype="bfloat16")
    cache = PrefixKVCache(lm)
    cache.add(prefixes)
    expected = next_token_logits(lm, [prefixes[k] + s for k, s in zip(keys, suffixes)], verbalizers)
    torch.testing.assert_close(cached_next_token_logits(cache, keys, suffixes, verbalizers), expected,
                               atol=0.05, rtol=0.05)


def test_reward_scores_and_accuracy(sst_files):
    lm = load_lm("tiny-gpt2", device="cpu")
    task = get_task("sst-2", data_dir=sst_files)
    reward = TaskGapReward(task, lm)
    ids = [lm.tokenizer.encode(" great", add_special_tokens=False), lm.tokenizer.encode(" no", add_special_tokens=False)]
    texts = [lm.tokenizer.decode(row) for row in ids]
    batch = {"sentence": SENTENCES[:4], "label": [1, 0, 1, 0]}
    out = reward(PromptBatch(texts, ids), batch)
    logits = full_forward(lm, task, ids, SENTENCES[:4])
    expected, correct = gap_reward(logits, torch.tensor(batch["label"]))
    torch.testing.assert_close(out.scores, expected.mean(-1), atol=1e-3, rtol=1e-4)
    assert out.logs["accuracy"] == pytest.approx(correct.float().mean().item())
    # text-only prompts (another tokenizer's ids) are tokenised by the task LM and score the same
    torch.testing.assert_close(reward(PromptBatch(texts), batch).scores, out.scores)


def test_reward_needs_label_column(sst_files):
    from rlprompt_interp.rewards import RewardError

    task = get_task("sst-2", data_dir=sst_files)
    reward = TaskGapReward(task, load_lm("tiny-gpt2", device="cpu"))
    with pytest.raises(RewardError, match="label"):
        reward(PromptBatch([" great"]), {"sentence": ["good"]})


def test_each_prompt_example_pair_reaches_the_lm_once(sst_files, monkeypatch):
    lm = load_lm("tiny-gpt2", device="cpu")
    reward = TaskGapReward(get_task("sst-2", data_dir=sst_files), lm)
    ids = [lm.tokenizer.encode(text, add_special_tokens=False) for text in (" great", " no", " great", " great")]
    batch = {"sentence": SENTENCES[:4], "label": [1, 0, 1, 0]}
    scored = []
    score = reward.pair_logits
    monkeypatch.setattr(reward, "pair_logits", lambda pairs: scored.append(len(pairs)) or score(pairs))
    out = reward(PromptBatch([lm.tokenizer.decode(row) for row in ids], ids), batch)
    assert scored == [8] and out.logs["accuracy/new_pairs"] == 8  # two distinct prompts x 4 examples
    alone = reward(PromptBatch([" great", " no"], ids[:2]), batch)
    assert scored == [8] and alone.logs["accuracy/new_pairs"] == 0  # every pair came from the memo
    torch.testing.assert_close(out.scores, alone.scores[[0, 1, 0, 0]])
    assert out.logs["accuracy/per_prompt"].tolist() == alone.logs["accuracy/per_prompt"][[0, 1, 0, 0]].tolist()
    # the memo holds what a fresh forward computes, and survives a checkpoint round trip
    fresh = TaskGapReward(get_task("sst-2", data_dir=sst_files), lm)
    torch.testing.assert_close(fresh(PromptBatch([" great", " no"], ids[:2]), batch).scores, alone.scores)
    restored = TaskGapReward(get_task("sst-2", data_dir=sst_files), lm)
    restored.load_state_dict(reward.state_dict())
    assert restored(PromptBatch([" great", " no"], ids[:2]), batch).logs["accuracy/new_pairs"] == 0


@pytest.mark.parametrize("spec", ["tiny-gpt2", "tiny-llama"])
def test_cached_path_in_bf16_agrees_with_the_full_forward_to_bf16_precision(spec, sst_files, bf16_cpu):
    """The path `--dtype auto` takes on a CPU with bf16 instructions: the models load in bf16 and the
    cached path keeps to bf16's precision (about 3 significant digits) of the full forward."""
    lm = load_lm(spec, device="cpu")
    assert lm.dtype == torch.bfloat16
    task = get_task("sst-2", data_dir=sst_files, template="Review: {sentence} It was{prompt}")
    reward = TaskGapReward(task, lm, batch_size=5)
    generator = torch.Generator().manual_seed(0)
    prompts = [torch.randint(5, len(lm.tokenizer), (n,), generator=generator).tolist() for n in (3, 3, 1)]
    got = reward.verbalizer_logits(prompts, [{"sentence": s} for s in SENTENCES]).float()
    expected = full_forward(lm, task, prompts, SENTENCES).float()
    scale = expected.abs().max()
    assert (got - expected).abs().max() <= 0.05 * scale, (got - expected).abs().max()
    assert expected.std() > 0
