"""The prompt a run keeps: the best few dev prompts and training samples scored again on dev and train together."""

import pytest
import torch

from rlprompt_interp.algorithms import SQLConfig, SQLTrainer
from rlprompt_interp.models import load_lm
from rlprompt_interp.rewards import Reward, RewardOutput

from test_policy import uniform_policy  # tests/ is on sys.path under pytest

pytestmark = pytest.mark.usefixtures("single_thread")


class RowVotes(Reward):
    """Each example votes for one token: a prompt scores the share of the batch's rows whose token it holds."""

    name = "votes"

    def __call__(self, prompts, batch):
        tokens = batch["token"]
        scores = torch.tensor([sum(t in ids for t in tokens) / len(tokens) for ids in prompts.token_ids])
        return RewardOutput(scores, {"accuracy": float(scores.mean()), "accuracy/per_prompt": scores})


def make_trainer(**options) -> SQLTrainer:
    # dev: 2 rows favour token 5, 1 row token 7; train: 6 rows token 7. On dev alone 5 wins; on all 9 rows, 7.
    dev, train = {"token": [5, 5, 7]}, {"token": [7] * 6}
    config = SQLConfig(prompt_length=2, steps=2, prompts_per_step=4, lr=1e-2, eval_every=1, seed=0, **options)
    return SQLTrainer(uniform_policy(load_lm("tiny-gpt2", device="cpu"), mlp_width=32), RowVotes(), config,
                      train_data=train, dev_data=dev)


def candidate(ids, reward, accuracy=None):
    return {"step": 1, "text": str(ids), "token_ids": ids, "reward": reward,
            **({"accuracy": accuracy} if accuracy is not None else {})}


def test_the_kept_prompt_is_the_best_on_dev_and_train_together():
    trainer = make_trainer(rescore_top=3)
    for result in (candidate([5, 1], 2 / 3), candidate([7, 1], 1 / 3), candidate([1, 2], 0.0), candidate([3, 4], 0.0)):
        trainer._remember(result)
    chosen = trainer.reselect()
    assert chosen["token_ids"] == [7, 1] and chosen["reward"] == 1 / 3  # its dev figures stay as they were
    selection = chosen["selection"]
    assert selection["examples"] == 9 and selection["dev_best"] == "[5, 1]"
    assert [c["text"] for c in selection["candidates"]] == ["[5, 1]", "[7, 1]", "[1, 2]"]  # the 3 best on dev
    assert [c["reward"] for c in selection["candidates"]] == pytest.approx([2 / 9, 7 / 9, 0.0])  # hand-counted
    assert {c["source"] for c in selection["candidates"]} == {"dev"}  # nothing was sampled


def test_a_training_sample_that_was_never_a_dev_prompt_can_be_kept():
    trainer = make_trainer(rescore_top=2, rescore_samples=2)
    for result in (candidate([5, 1], 2 / 3), candidate([1, 2], 0.0)):
        trainer._remember(result)
    # training scores: [7, 7] once at 1.0; [3, 3] twice (0.5, then 0.9: mean 0.7); [4, 4] at 0.6; [5, 1] at 1.0
    for step, (ids, scores) in enumerate([([[7, 7], [3, 3]], [1.0, 0.5]), ([[3, 3], [4, 4], [5, 1]], [0.9, 0.6, 1.0])]):
        trainer.step = step + 1
        trainer._tally(torch.tensor(ids), torch.tensor(scores))
    assert trainer.sampled[(3, 3)] == [pytest.approx(1.4), 2, 2]
    samples = trainer.best_samples(2, exclude=[[5, 1]])
    assert [s["token_ids"] for s in samples] == [[7, 7], [3, 3]]  # by mean training score; [5, 1] is excluded
    assert [s["reward"] for s in samples] == pytest.approx([1 / 3, 0.0])  # scored on the 3 dev rows
    assert samples[1]["train_reward"] == pytest.approx(0.7) and samples[1]["times_sampled"] == 2
    chosen = trainer.reselect()
    # on dev + train: [5, 1] 2/9, [1, 2] 0, [7, 7] 7/9, [3, 3] 0
    assert chosen["token_ids"] == [7, 7] and chosen["reward"] == pytest.approx(1 / 3) and chosen["step"] == 1
    selection = chosen["selection"]
    assert [c["source"] for c in selection["candidates"]] == ["dev", "dev", "sampled", "sampled"]
    assert [c["reward"] for c in selection["candidates"]] == pytest.approx([2 / 9, 0.0, 7 / 9, 0.0])
    assert selection["dev_best"] == "[5, 1]"  # what dev alone would have kept
    assert make_trainer(rescore_top=2, rescore_samples=0).best_samples(0) == []


def test_one_candidate_or_rescore_top_1_keeps_the_best_on_dev():
    trainer = make_trainer(rescore_top=1, rescore_samples=0)
    trainer.train(progress=False)
    assert "selection" not in trainer.best
    assert trainer.sampled == {}  # nothing is kept when no sample can be chosen
    lone = make_trainer(rescore_top=5)  # nothing sampled yet
    lone._remember(candidate([5, 1], 2 / 3))
    lone.best = lone.candidates[(5, 1)]
    assert lone.reselect() is lone.best


def test_a_run_ends_with_the_rescored_choice_and_resumes_to_the_same(tmp_path):
    def trained(stop_after=None, resume=False):
        dev, train = {"token": list(range(40, 50))}, {"token": list(range(100, 130))}
        config = SQLConfig(prompt_length=3, steps=6, prompts_per_step=4, lr=1e-2, eval_every=1, seed=0)
        trainer = SQLTrainer(uniform_policy(load_lm("tiny-gpt2", device="cpu"), mlp_width=32), RowVotes(), config,
                             train_data=train, dev_data=dev, output_dir=tmp_path / "run")
        if resume:
            assert trainer.resume()
        trainer.train(progress=False, stop_after=stop_after)
        return trainer

    partial = trained(stop_after=3)
    assert "selection" not in partial.best  # the run is not over
    finished = trained(resume=True)
    assert finished.best["selection"]["examples"] == 40
    sources = [c["source"] for c in finished.best["selection"]["candidates"]]
    assert sources.count("dev") == min(5, len(finished.candidates))
    assert sources.count("sampled") == min(10, len(set(finished.sampled) - set(finished.candidates)))
    assert finished.sampled and sum(times for _, times, _ in finished.sampled.values()) == 6 * 4  # every sample
    assert trained(resume=True).best == finished.best  # a finished run resumed keeps its choice
