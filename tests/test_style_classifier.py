"""Style classifiers: a head over MiniLM embeddings trained locally, and any HF sequence classifier."""

import pytest
import torch

from rlprompt_interp.rewards.base import PromptBatch
from rlprompt_interp.rewards.style import StyleClassifier
from rlprompt_interp.style.classifier import (EmbeddingStyleClassifier, HubStyleClassifier, StyleClassifierError,
                                              fit_head, load_style_classifier, train_style_classifier)

NEGATIVE = ["the food was cold and bland", "awful service, never again", "rude staff and dirty tables",
            "terrible pizza", "worst coffee i ever had", "slow, unfriendly and overpriced"]
POSITIVE = ["the food was warm and tasty", "lovely service, will be back", "friendly staff and clean tables",
            "amazing pizza", "best coffee in town", "quick, friendly and fair prices"]


def test_fit_head_learns_a_separable_problem():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(200, 8, generator=generator)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    for kind in ("logreg", "mlp"):
        head = fit_head(x, y, head=kind, epochs=80, lr=0.05)
        assert (head(x).argmax(-1) == y).float().mean() > 0.95


def test_train_save_load_and_reward(tmp_path):
    classifier = train_style_classifier([NEGATIVE, POSITIVE], test_texts=[["horrible and dirty"], ["delicious, friendly"]],
                                        styles=["negative", "positive"], epochs=200, lr=0.05, heldout_fraction=0.0,
                                        cache=False, log=lambda *_: None)
    metrics = classifier.config["metrics"]
    assert metrics["train_accuracy"] == 1.0 and metrics["test_accuracy"] == 1.0
    folder = classifier.save(tmp_path / "clf")
    assert (folder / "style_classifier.json").is_file() and (folder / "head.safetensors").is_file()
    loaded = load_style_classifier(folder)
    assert isinstance(loaded, EmbeddingStyleClassifier) and loaded.styles == ["negative", "positive"]
    texts = ["cold soup and rude waiter", "warm soup and kind waiter"]
    assert torch.allclose(loaded.predict_proba(texts), classifier.predict_proba(texts), atol=1e-6)
    reward = StyleClassifier(str(folder), target_style="positive")
    scores = reward(PromptBatch(texts), {}).scores
    assert scores[1] > 0.5 > scores[0]


def test_hugging_face_classifier_folder(tmp_path):
    from transformers import GPT2Config, GPT2ForSequenceClassification

    from rlprompt_interp.tiny import build_test_tokenizer

    tokenizer = build_test_tokenizer()
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=16, n_layer=1, n_head=2, num_labels=2,
                        pad_token_id=tokenizer.pad_token_id)
    GPT2ForSequenceClassification(config).save_pretrained(tmp_path / "hf")
    tokenizer.save_pretrained(tmp_path / "hf")
    classifier = load_style_classifier(tmp_path / "hf")
    assert isinstance(classifier, HubStyleClassifier) and len(classifier.styles) == 2
    probs = classifier.predict_proba(["a great movie", "bad", "the plot was really very boring"], batch_size=2)
    assert probs.shape == (3, 2) and torch.allclose(probs.sum(-1), torch.ones(3))
    one_by_one = torch.cat([classifier.predict_proba([t]) for t in ["a great movie", "bad"]])
    assert torch.allclose(probs[:2], one_by_one, atol=1e-5)  # padding does not change a row
    assert StyleClassifier(classifier, target_style=1).probabilities(["a great movie"]).item() == pytest.approx(
        probs[0, 1].item(), abs=1e-5)


def test_bad_classifier_folder(tmp_path):
    (tmp_path / "junk").mkdir()
    with pytest.raises(StyleClassifierError, match="neither"):
        load_style_classifier(tmp_path / "junk")
    with pytest.raises(StyleClassifierError, match="two styles"):
        train_style_classifier([NEGATIVE], cache=False)
