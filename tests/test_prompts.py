import pytest
import torch

from rlprompt_interp.cli import main
from rlprompt_interp.evaluation import evaluate_prompt, evaluate_prompts
from rlprompt_interp.models import load_lm
from rlprompt_interp.prompts import LearnedPrompt
from rlprompt_interp.scoring import next_token_logits, segment_example, soft_prompt_logits
from rlprompt_interp.tasks import get_task


def test_save_and_load_round_trip(tmp_path):
    soft = LearnedPrompt(text="the movie", token_ids=[3, 4], embeddings=torch.randn(2, 32),
                         scores={"dev_accuracy": 0.75}, curve=[{"step": 1, "loss": 0.5}],
                         provenance={"method": "pez", "seed": 3})
    again = LearnedPrompt.load(soft.save(tmp_path / "p"))
    assert again.text == "the movie" and again.token_ids == [3, 4] and again.is_soft
    torch.testing.assert_close(again.embeddings, soft.embeddings)
    assert again.provenance["method"] == "pez" and again.provenance["package_version"]
    assert again.curve == soft.curve and again.scores == soft.scores
    with pytest.raises(FileNotFoundError, match="no learned prompt"):
        LearnedPrompt.load(tmp_path / "missing")


def test_id_prompt_evaluation_splices_tokens(sst_files, tmp_path):
    lm = load_lm("tiny-gpt2", device="cpu")
    task = get_task("sst-2", data_dir=str(sst_files))
    ids = lm.tokenizer.encode(" very good", add_special_tokens=False)
    prompt = LearnedPrompt(text=" very good", token_ids=ids)
    report = evaluate_prompt(task, lm, prompt, split="test", progress=False)
    # the template's space before {prompt} is dropped because " very" carries its own
    example = task.load_split("test")[0]
    before, after = segment_example(lm, example["sentence"] + " ", "", ids)
    assert lm.tokenizer.decode(before + ids) == example["sentence"] + " very good"
    assert main(["eval", "--task", "sst-2", "--model", "tiny-gpt2", "--data-dir", str(sst_files), "--quiet",
                 "--learned", str(prompt.save(tmp_path / "learned")), "--output", str(tmp_path / "r.json")]) == 0
    assert 0.0 <= report.accuracy <= 1.0


def test_several_prompts_in_one_pass_score_as_each_alone(sst_files, monkeypatch):
    import rlprompt_interp.evaluation as evaluation

    lm = load_lm("tiny-gpt2", device="cpu")  # a cache of 40 tokens' states: several chunks, each encoded once
    monkeypatch.setattr(evaluation, "EVAL_CACHE_BYTES", 40 * evaluation.kv_bytes_per_token(lm))
    task = get_task("sst-2", data_dir=str(sst_files))
    ids = [lm.tokenizer.encode(text, add_special_tokens=False) for text in (" very good", " the plot", " bad")]
    soft = LearnedPrompt(text="soft", token_ids=ids[0], embeddings=torch.randn(2, lm.model.config.n_embd))
    prompts = ["", *(LearnedPrompt(text=str(i), token_ids=i) for i in ids), soft, " a text"]
    together = evaluate_prompts(task, lm, prompts, split="test", progress=False)
    evaluation.clear_caches()
    alone = [evaluate_prompt(task, lm, p, split="test", progress=False) for p in prompts]
    assert [r.accuracy for r in together] == [r.accuracy for r in alone]
    assert [r.predicted_fraction for r in together] == [r.predicted_fraction for r in alone]


def test_evaluation_chunks_hold_a_budget_of_tokens_not_of_examples(sst_files, monkeypatch):
    import rlprompt_interp.evaluation as evaluation

    # by hand: 5 + 5 fit 10, the third 5 starts a chunk, 20 is alone (over the budget), 1 follows
    assert evaluation.chunk_by_tokens([5, 5, 5, 20, 1], 10) == [range(0, 2), range(2, 3), range(3, 4), range(4, 5)]
    assert evaluation.chunk_by_tokens([], 10) == []
    lm = load_lm("tiny-gpt2", device="cpu")
    task = get_task("sst-2", data_dir=str(sst_files))
    scorer = evaluation.example_cache_scorer(task, lm)
    examples = [{"sentence": "a b c d e f g h"}, {"sentence": "a"}, {"sentence": "a b c d e f g h"}]
    lengths = [len(lm.tokenizer.encode(task.template.split(e, None)[0])) for e in examples]
    monkeypatch.setattr(evaluation, "EVAL_CACHE_BYTES", (lengths[0] + lengths[1]) * evaluation.kv_bytes_per_token(lm))
    assert evaluation.example_chunks(scorer, examples) == [range(0, 2), range(2, 3)]


@pytest.mark.parametrize("spec", ["tiny-gpt2", "tiny-llama", "tiny-t5"])
def test_soft_prompt_of_real_embeddings_equals_the_token_path(spec):
    """A soft prompt that is exactly some tokens' embeddings must give those tokens' logits."""
    lm = load_lm(spec, device="cpu")
    prompt_ids = [40, 41, 42]
    segments = [([5, 6, 7, 8], [9]), ([10], [11, 12])]
    soft = lm.model.get_input_embeddings().weight[prompt_ids].detach()
    with torch.no_grad():
        soft_logits = soft_prompt_logits(lm, segments, soft, [20, 30])
    token_logits = next_token_logits(lm, [b + prompt_ids + a for b, a in segments], [20, 30])
    torch.testing.assert_close(soft_logits, token_logits, atol=1e-5, rtol=1e-5)


def test_soft_prompt_logits_are_differentiable():
    lm = load_lm("tiny-gpt2", device="cpu")
    soft = torch.randn(3, 32, requires_grad=True)
    soft_prompt_logits(lm, [([5, 6], [7])], soft, [20, 30]).sum().backward()
    assert soft.grad is not None and soft.grad.abs().sum() > 0


def test_from_text_keeps_the_tokenizers_ids_without_special_tokens():
    lm = load_lm("tiny-gpt2", device="cpu")
    prompt = LearnedPrompt.from_text(" Sentiment:", lm.tokenizer)
    assert prompt.text == " Sentiment:" and not prompt.is_soft
    assert prompt.token_ids == lm.tokenizer.encode(" Sentiment:", add_special_tokens=False)
    assert LearnedPrompt.from_text("", lm.tokenizer).token_ids == []
