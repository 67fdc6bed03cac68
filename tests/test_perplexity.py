import math

import pytest
import torch

from rlprompt_interp.models import load_lm
from rlprompt_interp.perplexity import log_perplexity, perplexity


@pytest.mark.parametrize("spec", ["tiny-gpt2", "tiny-llama"])
def test_perplexity_equals_a_direct_computation(spec):
    lm = load_lm(spec, device="cpu")
    text = "the movie was great fun"
    ids = [lm.tokenizer.eos_token_id] + lm.tokenizer.encode(text, add_special_tokens=False)
    with torch.no_grad():
        logits = lm.model(torch.tensor([ids])).logits[0]
    nll = -sum(torch.log_softmax(logits[i], -1)[ids[i + 1]].item() for i in range(len(ids) - 1)) / (len(ids) - 1)
    # batched with a shorter and a longer text, so padding is exercised
    got = perplexity(lm, ["good", text, text + " and the acting was awful"])
    assert got[1].item() == pytest.approx(math.exp(nll), rel=1e-4)
    assert log_perplexity(lm, [text])[0].item() == pytest.approx(nll, abs=1e-4)


def test_empty_prompt_is_refused():
    with pytest.raises(ValueError, match="empty prompt"):
        perplexity(load_lm("tiny-gpt2", device="cpu"), ["fine", ""])


def test_encoder_decoder_scorer_is_refused():
    with pytest.raises(ValueError, match="causal scorer"):
        perplexity(load_lm("tiny-t5", device="cpu"), ["fine"])


def test_repeated_texts_are_scored_once(monkeypatch):
    import rlprompt_interp.perplexity as module

    lm = load_lm("tiny-gpt2", device="cpu")
    expected = log_perplexity(lm, ["good", "the movie was great fun"])
    seen = []
    score = module.sequence_nll
    monkeypatch.setattr(module, "sequence_nll",
                        lambda lm, sequences: seen.append(len(sequences)) or score(lm, sequences))
    got = log_perplexity(lm, ["good", "the movie was great fun", "good", "good"])
    assert seen == [2]
    torch.testing.assert_close(got, expected[[0, 1, 0, 0]])


def test_prompt_perplexity_is_none_for_a_blank_text_or_no_scorer():
    from rlprompt_interp.perplexity import prompt_perplexity

    lm = load_lm("tiny-gpt2", device="cpu")
    assert prompt_perplexity(lm, "  ") is None and prompt_perplexity(None, "great") is None
    assert prompt_perplexity(lm, "great movie") == pytest.approx(float(perplexity(lm, ["great movie"])[0]))
