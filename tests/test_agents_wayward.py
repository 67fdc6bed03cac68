"""Waywardness-constrained tuning: starts at the target, learns, and γ holds it near the target."""

import json

import pytest

from rlprompt_interp.agents import get_agent
from rlprompt_interp.agents.continuous import ContinuousPromptError
from rlprompt_interp.agents.wayward import read_target
from rlprompt_interp.models import load_lm
from rlprompt_interp.tasks import get_task

from test_agents import dev_accuracies, losses

TARGET = "the movie was"


def fit(sst_files, gamma, steps=20):
    task = get_task("sst-2", data_dir=str(sst_files), template="{prompt} {sentence}")
    agent = get_agent("wayward", model="tiny-t5", target_text=TARGET, gamma=gamma, lr=0.1, batch_size=6,
                      eval_every=10, quiet=True)
    return agent.fit(task, prompt_length=99, steps=steps, seed=0)


def test_wayward_starts_at_the_target_and_learns(sst_files):
    learned = fit(sst_files, gamma=0.01)
    lm = load_lm("tiny-t5")
    target_ids = lm.tokenizer.encode(TARGET, add_special_tokens=False)
    assert learned.embeddings.shape[0] == len(target_ids)  # the prompt takes the target's length
    assert learned.curve[0]["prompt"] == lm.tokenizer.decode(target_ids)  # step 0 is the target itself
    assert learned.curve[1]["distance"] == pytest.approx(0.0, abs=1e-12)
    assert dev_accuracies(learned)[0] == 0.5 and learned.scores["dev_accuracy"] >= 0.5 + 0.3
    assert losses(learned)[-1] < losses(learned)[0] - 0.2
    assert learned.provenance["target_text"] == TARGET and learned.provenance["gamma"] == 0.01


def test_gamma_keeps_the_prompt_near_the_target(sst_files):
    free, held = fit(sst_files, gamma=0.0), fit(sst_files, gamma=5.0)
    distance = [[r["distance"] for r in run.curve if "distance" in r][-1] for run in (free, held)]
    assert distance[1] < 0.5 * distance[0]


def test_target_file_and_errors(tmp_path):
    path = tmp_path / "targets.json"
    path.write_text(json.dumps({"a": "Write a story.", "b": "Answer the question."}))
    assert read_target(path, "b") == "Answer the question."
    with pytest.raises(ContinuousPromptError, match="'c' is not in"):
        read_target(path, "c")
    with pytest.raises(ContinuousPromptError, match="needs a target text"):
        get_agent("wayward")
