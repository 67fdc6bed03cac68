"""The continuous-prompt loop and the soft prompt agent: learning, save/load, resume, registry, CLI."""

import pytest
import torch

from rlprompt_interp.agents import get_agent, list_agents
from rlprompt_interp.agents.continuous import ContinuousPromptError, nearest_tokens
from rlprompt_interp.config import ConfigError
from rlprompt_interp.checkpoints import CheckpointError
from rlprompt_interp.evaluation import evaluate_prompt, prompt_logits
from rlprompt_interp.models import load_lm
from rlprompt_interp.prompts import LearnedPrompt
from rlprompt_interp.tasks import get_task

PROMPT_FIRST = "{prompt} {sentence}"


def one_class_task(tmp_path):
    """Every example positive: a causal tiny model can only learn to push " great" (its random
    weights give the prompt little grip on the sentence), so the loss is what must fall."""
    rows = ["the movie was great fun", "really good acting", "beautiful and funny", "an awful boring film"]
    folder = tmp_path / "sst-2" / "16-42"
    folder.mkdir(parents=True)
    text = "sentence\tlabel\n" + "".join(f"{row}\t1\n" for row in rows)
    for path in (folder / "train.tsv", folder / "dev.tsv", tmp_path / "sst-2" / "test.tsv"):
        path.write_text(text)
    return get_task("sst-2", data_dir=str(tmp_path))


def losses(learned):
    return [record["task_loss"] for record in learned.curve if "task_loss" in record]


def dev_accuracies(learned):
    return [record["dev_accuracy"] for record in learned.curve if "dev_accuracy" in record]


def test_soft_prompt_learns_on_tiny_gpt2(tmp_path):
    task = one_class_task(tmp_path)
    agent = get_agent("soft-prompt", model="tiny-gpt2", lr=0.05, batch_size=4, eval_every=10, quiet=True)
    learned = agent.fit(task, prompt_length=4, steps=20, seed=0)
    first, last = losses(learned)[0], losses(learned)[-1]
    assert first > 0.6 and last < first - 0.2  # measured: 0.633 -> 0.33
    assert learned.embeddings.shape == (4, 32) and learned.embeddings.requires_grad is False
    table = load_lm("tiny-gpt2").model.get_input_embeddings().weight
    assert learned.token_ids == nearest_tokens(learned.embeddings, table.float(), "dot").tolist()
    assert learned.provenance["method"] == "soft-prompt" and learned.provenance["task_model"] == "tiny-gpt2"
    assert learned.provenance["config"]["lr"] == 0.05 and learned.provenance["seed"] == 0


def test_soft_prompt_learns_on_tiny_t5(sst_files):
    """The encoder-decoder path: prompt prepended to the encoder input, class read at the first decoder step."""
    task = get_task("sst-2", data_dir=str(sst_files), template=PROMPT_FIRST)
    agent = get_agent("soft-prompt", model="tiny-t5", lr=0.1, batch_size=6, eval_every=10, quiet=True)
    learned = agent.fit(task, prompt_length=4, steps=20, seed=0)
    assert dev_accuracies(learned)[0] == 0.5
    assert learned.scores["dev_accuracy"] >= 0.5 + 0.3  # measured: 0.5 -> 1.0 within 20 steps
    assert losses(learned)[-1] < losses(learned)[0] - 0.2


def test_saved_and_loaded_prompt_evaluates_identically(sst_files, tmp_path):
    task = get_task("sst-2", data_dir=str(sst_files), template=PROMPT_FIRST)
    lm = load_lm("tiny-t5")
    learned = get_agent("soft-prompt", model="tiny-t5", lr=0.1, eval_every=5, quiet=True).fit(
        task, prompt_length=3, steps=5, seed=1)
    loaded = LearnedPrompt.load(learned.save(tmp_path / "saved"))
    examples = task.load_split("test")
    ids = task.verbalizer_ids(lm.tokenizer)
    assert torch.equal(prompt_logits(task, lm, learned, examples, ids), prompt_logits(task, lm, loaded, examples, ids))
    assert evaluate_prompt(task, lm, loaded, progress=False) == evaluate_prompt(task, lm, learned, progress=False)
    assert loaded.curve == learned.curve and loaded.provenance == learned.provenance


def test_resume_continues_exactly(sst_files, tmp_path):
    task = get_task("sst-2", data_dir=str(sst_files))
    options = dict(model="tiny-gpt2", lr=0.05, batch_size=3, eval_every=3, optimizer="adafactor", quiet=True)
    straight = get_agent("soft-prompt", **options).fit(task, prompt_length=2, steps=6, seed=3, output_dir=tmp_path / "a")
    get_agent("soft-prompt", **options).fit(task, prompt_length=2, steps=3, seed=3, output_dir=tmp_path / "b")
    resumed = get_agent("soft-prompt", **options).fit(task, prompt_length=2, steps=6, seed=3, output_dir=tmp_path / "b",
                                                      resume=True)
    assert torch.equal(resumed.embeddings, straight.embeddings)
    assert resumed.curve == straight.curve and len(resumed.curve) == 7  # steps 0..6
    with pytest.raises(CheckpointError, match="prompt_length 2 there, 4 here"):
        get_agent("soft-prompt", **options).fit(task, prompt_length=4, steps=6, output_dir=tmp_path / "b", resume=True)
    with pytest.raises(FileNotFoundError, match="train without --resume"):
        get_agent("soft-prompt", **options).fit(task, prompt_length=2, steps=6, output_dir=tmp_path / "c", resume=True)


def test_early_stopping_keeps_the_best_prompt(sst_files):
    task = get_task("sst-2", data_dir=str(sst_files))
    learned = get_agent("soft-prompt", model="tiny-gpt2", lr=1e-6, eval_every=1, patience=2, quiet=True).fit(
        task, prompt_length=2, steps=50, seed=0)
    # a learning rate this small changes nothing: the first evaluation stays best, two more stop the run
    assert learned.scores["stopped_early"] and learned.scores["steps_run"] == 2
    assert learned.scores["dev_accuracy"] == max(dev_accuracies(learned))


def test_init_from_text_and_bad_options(sst_files):
    task = get_task("sst-2", data_dir=str(sst_files))
    lm = load_lm("tiny-gpt2")
    text_ids = lm.tokenizer.encode(" great", add_special_tokens=False)
    learned = get_agent("soft-prompt", model="tiny-gpt2", init="text", init_text=" great", eval_every=1,
                        quiet=True).fit(task, prompt_length=3, steps=0)
    table = lm.model.get_input_embeddings().weight.float()
    assert torch.equal(learned.embeddings[-len(text_ids):], table[text_ids])  # the text sits next to the answer
    with pytest.raises(ContinuousPromptError, match="more than the prompt length"):
        get_agent("soft-prompt", model="tiny-gpt2", init="text", init_text=" great movie fun", quiet=True).fit(
            task, prompt_length=1, steps=1)
    with pytest.raises(ConfigError, match="--init-text"):
        get_agent("soft-prompt", init="text")
    with pytest.raises(ConfigError, match="optimizer must be one of"):
        get_agent("soft-prompt", optimizer="sgd")
    with pytest.raises(TypeError, match="has no options"):
        get_agent("soft-prompt", gamma=0.1)


def test_registry_names_every_agent():
    assert list_agents() == ["grpo", "pez", "rloo", "rlprompt", "soft-prompt", "wayward"]
    with pytest.raises(KeyError, match="choose one of"):
        get_agent("prefix-tuning")


def test_cli_trains_and_saves_a_soft_prompt(sst_files, tmp_path, capsys):
    from rlprompt_interp.cli import main

    out = tmp_path / "run"
    code = main(["train", "--task", "sst-2", "--data-dir", str(sst_files), "--agent", "soft-prompt",
                 "--model", "tiny-gpt2", "--prompt-length", "2", "--steps", "2", "--eval-every", "1",
                 "--batch-size-train", "2", "--optimizer", "adafactor", "--init-text", " great",
                 "--output", str(out), "--quiet"])
    assert code == 0
    learned = LearnedPrompt.load(out)
    assert learned.is_soft and learned.provenance["config"]["optimizer"] == "adafactor"
    assert learned.provenance["config"]["init"] == "text" and "test_accuracy" in learned.scores
    assert main(["train", "--task", "sst-2", "--data-dir", str(sst_files), "--agent", "soft-prompt", "--model",
                 "tiny-gpt2", "--init-text", " great movie fun", "--prompt-length", "1", "--output",
                 str(tmp_path / "bad"), "--quiet"]) == 2
    assert "more than the prompt length" in capsys.readouterr().err
