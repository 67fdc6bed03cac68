"""Metrics that run a model (tiny random ones): faithfulness, scrutability = the perplexity reward, the report."""

import pytest
import torch

from rlprompt_interp.evaluation import evaluate_prompt
from rlprompt_interp.metrics import Scrutability, faithfulness, scrutability, unembed, unembedded_prompt
from rlprompt_interp.metrics.report import build_report
from rlprompt_interp.perplexity import perplexity
from rlprompt_interp.prompts import LearnedPrompt
from rlprompt_interp.scoring import next_token_logits, segment_example, soft_prompt_logits
from rlprompt_interp.tasks import get_task

IDS = [40, 41, 42, 43]


@pytest.fixture
def task(sst_files):
    return get_task("sst-2", data_dir=str(sst_files))


def table(lm):
    return lm.model.get_input_embeddings().weight.detach()


def test_exact_token_embeddings_are_perfectly_faithful(tiny_gpt2, task):
    soft = LearnedPrompt(text="", embeddings=table(tiny_gpt2)[IDS].clone())
    report = faithfulness(task, tiny_gpt2, soft, metric="euclidean", batch_size=4)
    assert report.unembedded_token_ids == IDS
    assert report.distance_differential["euclidean"] == 0.0
    assert report.distance_differential["cosine"] == pytest.approx(0.0, abs=1e-12)
    assert report.output_differential == pytest.approx(0.0, abs=1e-9)
    assert report.top1_agreement == 1.0 and report.class_agreement == 1.0
    assert report.performance_differential == 0.0


def test_distance_differential_of_a_known_offset(tiny_gpt2, task):
    """Each position moved by a vector of norm 0.01 (far less than the gap between tokens): Δ_D = 0.01² exactly."""
    offset = torch.randn(len(IDS), table(tiny_gpt2).shape[1], generator=torch.Generator().manual_seed(0))
    offset = 0.01 * offset / offset.norm(dim=-1, keepdim=True)
    soft = LearnedPrompt(text="", embeddings=table(tiny_gpt2)[IDS] + offset)
    report = faithfulness(task, tiny_gpt2, soft, metric="euclidean", batch_size=4)
    assert report.unembedded_token_ids == IDS
    assert report.distance_differential["euclidean"] == pytest.approx(1e-4, rel=1e-3)


def test_faithfulness_of_a_random_soft_prompt_matches_direct_computation(tiny_gpt2, task):
    soft = LearnedPrompt(text="", embeddings=0.5 * torch.randn(3, 32, generator=torch.Generator().manual_seed(1)))
    report = faithfulness(task, tiny_gpt2, soft, metric="cosine", batch_size=4, chunk=4)  # chunks of 4, 2 examples
    text = unembedded_prompt(soft, tiny_gpt2, "cosine")
    assert text.token_ids == unembed(soft.embeddings, table(tiny_gpt2), "cosine").top1
    # Δ_Output, Δ_L and agreement against logits computed directly, example by example; the unembedded
    # prompt is spliced in as token ids between the same example tokens as the soft prompt
    vocab = list(range(tiny_gpt2.model.config.vocab_size))
    verbalizers = task.verbalizer_ids(tiny_gpt2.tokenizer)
    squared, agree, correct_soft, correct_text = [], [], 0, 0
    for example in task.load_split("test"):
        before, after = segment_example(tiny_gpt2, *task.template.split(example))
        with torch.no_grad():
            l_soft = soft_prompt_logits(tiny_gpt2, [(before, after)], soft.embeddings, vocab)[0]
        l_text = next_token_logits(tiny_gpt2, [before + text.token_ids + after], vocab)[0]
        squared.append(float((l_soft - l_text).pow(2).mean()))
        agree.append(int(l_soft.argmax()) == int(l_text.argmax()))
        correct_soft += int(l_soft[verbalizers].argmax()) == example["label"]
        correct_text += int(l_text[verbalizers].argmax()) == example["label"]
    assert report.output_differential == pytest.approx(sum(squared) / len(squared), rel=1e-5)
    assert report.output_differential > 1e-4  # a random prompt is not its unembedding
    assert report.top1_agreement == pytest.approx(sum(agree) / len(agree))
    assert report.soft.accuracy == pytest.approx(correct_soft / 6)
    assert report.unembedded.accuracy == pytest.approx(correct_text / 6)
    assert report.performance_differential == pytest.approx(abs(correct_soft - correct_text) / 6)
    assert report.soft.accuracy == evaluate_prompt(task, tiny_gpt2, soft, progress=False).accuracy


def test_scrutability_metric_equals_the_perplexity_reward(tiny_gpt2):
    from rlprompt_interp.rewards import PromptBatch
    from rlprompt_interp.rewards.perplexity import Perplexity

    texts = [" the movie was", " great great great", " review:"]
    metric = Scrutability().compute(predictions=texts, scorer=tiny_gpt2)
    reward = Perplexity(tiny_gpt2)(PromptBatch(texts), {})
    assert metric["perplexities"] == scrutability(tiny_gpt2, texts)
    torch.testing.assert_close(torch.tensor(metric["perplexities"]), -reward.scores, rtol=0, atol=0)
    assert metric["mean_perplexity"] == pytest.approx(sum(metric["perplexities"]) / 3)


def test_report_of_a_soft_prompt(tiny_gpt2, task):
    soft = LearnedPrompt(text="p", embeddings=0.5 * torch.randn(3, 32, generator=torch.Generator().manual_seed(2)))
    report = build_report(task, tiny_gpt2, soft, scorer=tiny_gpt2, top_k=3, batch_size=4, progress=False)
    f = report.faithfulness
    assert report.classification.accuracy == evaluate_prompt(task, tiny_gpt2, soft, progress=False).accuracy
    assert report.scored_text == f.unembedded_text
    assert report.perplexity == pytest.approx(float(perplexity(tiny_gpt2, [f.unembedded_text])[0]))
    assert [len(row["tokens"]) for row in report.nearest_tokens] == [3, 3, 3]
    payload = report.to_dict()
    assert payload["interpretability"]["faithfulness"]["performance_differential"] == f.performance_differential
    text = report.format()
    assert "Δ_L" in text and "nearest tokens (cosine, top 3)" in text


def test_report_of_a_discrete_prompt_is_faithful_by_construction(tiny_gpt2, task):
    ids = tiny_gpt2.tokenizer.encode(" great movie", add_special_tokens=False)
    prompt = LearnedPrompt(text=" great movie", token_ids=ids)
    report = build_report(task, tiny_gpt2, prompt, scorer=None, batch_size=4, progress=False)
    assert report.faithfulness.performance_differential == 0.0 and report.faithfulness.output_differential < 1e-9
    assert report.classification.accuracy == evaluate_prompt(task, tiny_gpt2, prompt, progress=False).accuracy
    assert report.perplexity is None and "skipped" in report.perplexity_note
    plain = build_report(task, tiny_gpt2, "", scorer=tiny_gpt2, batch_size=4, progress=False)
    assert plain.faithfulness is None and plain.perplexity_note == "empty prompt"
