"""PEZ, PEZ with a perplexity penalty, and the differentiable perplexity behind it."""

import copy

import pytest
import torch

from rlprompt_interp.agents import get_agent
from rlprompt_interp.agents.continuous import ContinuousPromptError, nearest_tokens
from rlprompt_interp.config import ConfigError
from rlprompt_interp.agents.pez import check_same_vocabulary, load_continuous_prompt
from rlprompt_interp.evaluation import evaluate_prompt
from rlprompt_interp.models import LoadedModel, load_lm
from rlprompt_interp.perplexity import embedded_nll, sequence_nll
from rlprompt_interp.prompts import LearnedPrompt
from rlprompt_interp.tasks import get_task

from test_agents import dev_accuracies, losses, one_class_task


def test_nearest_tokens_by_each_metric():
    table = torch.tensor([[1.0, 0.0], [0.0, 3.0], [2.0, 2.0]])
    vector = torch.tensor([[0.9, 0.3]])
    assert nearest_tokens(vector, table, "dot").item() == 2  # 2.4 beats 0.9 and 0.9
    assert nearest_tokens(vector, table, "cosine").item() == 0  # angle 18° beats 27° and 72°
    assert nearest_tokens(vector, table, "euclidean").item() == 0  # distance 0.32
    with pytest.raises(ContinuousPromptError, match="unknown projection metric"):
        nearest_tokens(vector, table, "manhattan")


def test_pez_learns_a_discrete_prompt_on_tiny_t5(sst_files, tmp_path):
    task = get_task("sst-2", data_dir=str(sst_files), template="{prompt} {sentence}", verbalizers=[" terrible", " great"])
    learned = get_agent("pez", model="tiny-t5", lr_scale=0.3, batch_size=6, eval_every=10, quiet=True).fit(
        task, prompt_length=4, steps=30, seed=0, output_dir=tmp_path / "pez")
    # measured: 0.5 -> 0.83 (cosine projection; the discrete search on a random tiny T5 is noisy)
    assert dev_accuracies(learned)[0] == 0.5 and learned.scores["dev_accuracy"] >= 0.5 + 0.3
    assert learned.embeddings is None and len(learned.token_ids) == 4  # evaluated as tokens, never as a soft prompt
    lm = load_lm("tiny-t5")
    # every step ran the LM on the projection of the continuous prompt
    steps = [record for record in learned.curve if "prompt_ids" in record]
    assert len(steps) == 30 and all(len(record["prompt_ids"]) == 4 for record in steps)
    continuous = load_continuous_prompt(tmp_path / "pez")
    table = lm.model.get_input_embeddings().weight.float()
    assert nearest_tokens(continuous, table, "cosine").tolist() == learned.token_ids  # PEZ projects by cosine
    saved = LearnedPrompt.load(tmp_path / "pez")
    assert evaluate_prompt(task, lm, saved, split="dev", progress=False).accuracy == learned.scores["dev_accuracy"]


def test_pez_lowers_the_loss_on_tiny_gpt2(tmp_path):
    task = one_class_task(tmp_path)
    learned = get_agent("pez", model="tiny-gpt2", batch_size=4, eval_every=10, quiet=True).fit(
        task, prompt_length=4, steps=20, seed=0)
    assert min(losses(learned)) < losses(learned)[0] - 0.1  # measured: 0.633 -> 0.442
    assert learned.provenance["method"] == "pez" and learned.provenance["projection_metric"] == "cosine"


def test_embedded_nll_equals_sequence_nll_and_has_gradients():
    lm = load_lm("tiny-gpt2")
    ids = lm.tokenizer.encode(" the movie was great", add_special_tokens=False)
    table = lm.model.get_input_embeddings().weight
    embeddings = table[ids].detach().clone().requires_grad_(True)
    nll = embedded_nll(lm, ids, embeddings)
    assert torch.allclose(nll, sequence_nll(lm, [ids])[0], atol=1e-5)
    nll.mean().backward()
    assert embeddings.grad[:-1].abs().sum() > 0  # every token but the last is context for a later one
    assert embeddings.grad[-1].abs().sum() == 0
    with pytest.raises(ValueError, match="causal scorer"):
        embedded_nll(load_lm("tiny-t5"), ids, embeddings)


def test_perplexity_penalty_lowers_the_prompt_perplexity(tmp_path):
    task = one_class_task(tmp_path)
    options = dict(model="tiny-gpt2", batch_size=4, eval_every=10, quiet=True, ppl_form="log-perplexity")
    learned = get_agent("pez", ppl_weight=1.0, **options).fit(task, prompt_length=4, steps=20, seed=0)
    log_ppl = [record["prompt_log_ppl"] for record in learned.curve if "prompt_log_ppl" in record]
    assert min(log_ppl[-5:]) < log_ppl[0] - 0.1  # measured: 6.20 -> 6.00 nats
    assert min(losses(learned)) < losses(learned)[0] - 0.1  # the task still learns
    assert learned.provenance["method"] == "pez-ppl" and learned.provenance["scorer"] == "tiny-gpt2"


def test_scorer_must_share_the_vocabulary():
    lm = load_lm("tiny-gpt2")
    other = copy.deepcopy(lm.tokenizer)
    other.add_tokens(["zzqqx"])
    with pytest.raises(ContinuousPromptError, match="vocabulary"):
        check_same_vocabulary(lm, LoadedModel(model=lm.model, tokenizer=other, spec="other"))
    with pytest.raises(ContinuousPromptError, match="causal LM"):
        check_same_vocabulary(lm, load_lm("tiny-t5"))
    check_same_vocabulary(lm, load_lm("tiny-llama"))  # same tokenizer, same width: accepted
    with pytest.raises(ConfigError, match="ppl_weight must be at least 0"):
        get_agent("pez", ppl_weight=-1)
