"""TRLReward: the toolkit's rewards behind TRL's reward-function signature."""

from types import SimpleNamespace

import pytest

from rlprompt_interp.agents.rlprompt import task_columns
from rlprompt_interp.rewards import TaskGapReward, Perplexity, PromptBatch, TRLReward
from rlprompt_interp.tasks import get_task

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture
def task(sst_files):
    return get_task("sst-2", data_dir=str(sst_files))


def test_scores_equal_the_reward_on_the_same_batch_and_logs_reach_trl(task, tiny_gpt2):
    reward = TaskGapReward(task, tiny_gpt2) + 0.5 * Perplexity(tiny_gpt2)
    wrapped = TRLReward(reward, task_columns(task, "train"), examples_per_call=3, seed=5,
                        tokenizer=tiny_gpt2.tokenizer)
    texts = [" great movie", " the plot was", " really"]
    ids = [tiny_gpt2.tokenizer.encode(t) for t in texts]
    metrics, extra = {}, {}
    scores = wrapped(prompts=["Write:"] * 3, completions=texts, completion_ids=ids,
                     trainer_state=SimpleNamespace(global_step=7), log_metric=metrics.__setitem__,
                     log_extra=extra.__setitem__)

    batch = wrapped.batch(7)
    assert len(batch["label"]) == 3 and set(batch) == {"sentence", "label"}
    expected = reward(PromptBatch(texts, ids), batch)
    assert scores == pytest.approx(expected.scores.tolist())
    assert wrapped.__name__ == "gap+perplexity"  # TRL logs rewards/gap+perplexity/mean
    assert {"accuracy", "perplexity", "log_perplexity", "gap/score"} <= set(metrics)  # the gap apart from accuracy
    assert metrics["accuracy"] == pytest.approx(expected.logs["accuracy"])
    assert len(extra["accuracy/per_prompt"]) == 3  # per-prompt logs become completion-table columns
    assert wrapped.last_logs == metrics


def test_batches_follow_seed_and_step(task):
    columns = task_columns(task, "train")
    first, again = (TRLReward(lambda prompts, **batch: [0.0] * len(prompts), columns, examples_per_call=2, seed=1)
                    for _ in range(2))
    assert first.batch(3) == again.batch(3)  # a resumed run (or another process) sees the same examples
    assert any(first.batch(3) != first.batch(step) for step in range(4, 10))
    assert TRLReward(first.reward, None).batch(0) == {}


def test_plain_functions_conversational_completions_and_special_tokens(tiny_gpt2):
    seen = []

    def length(prompts, **batch):
        seen.append((list(prompts), batch))
        return [len(p) for p in prompts]

    wrapped = TRLReward(length, tokenizer=tiny_gpt2.tokenizer)
    eos = tiny_gpt2.tokenizer.eos_token_id
    completions = [[{"role": "assistant", "content": "ab"}], "abc"]
    assert wrapped(prompts=["x", "x"], completions=completions, completion_ids=[[5, eos], [6, 7]]) == [2.0, 3.0]
    assert seen == [(["ab", "abc"], {})] and wrapped.calls == 1
    batch = wrapped.prompts(["a", "b"], [[5, eos], [6, 7]])
    assert batch.token_ids == [[5], [6, 7]]  # the EOS that ended a completion is not part of the prompt


def test_bad_train_data_is_refused():
    with pytest.raises(ValueError, match="differ in length"):
        TRLReward(lambda prompts, **batch: [0.0] * len(prompts), {"sentence": ["a", "b"], "label": [1]})
    with pytest.raises(ValueError, match="at least 1"):
        TRLReward(lambda prompts, **batch: [0.0] * len(prompts), examples_per_call=0)
