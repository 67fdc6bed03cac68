"""The prompt a run keeps: the best few dev prompts and training samples scored again on dev and train together
(``selection.PromptSelection``, on its own with figures counted by hand, then inside the SQL trainer)."""

from types import SimpleNamespace

import pytest
import torch

from rlprompt_interp.algorithms import SQLConfig, SQLTrainer
from rlprompt_interp.models import load_lm
from rlprompt_interp.rewards import Reward, RewardOutput
from rlprompt_interp.selection import PromptSelection, held_out, rank, training_rows

from test_policy import uniform_policy  # tests/ is on sys.path under pytest

pytestmark = pytest.mark.usefixtures("single_thread")


class RowVotes(Reward):
    """Each example votes for one token: a prompt scores the share of the batch's rows whose token it holds."""

    name = "votes"

    def __call__(self, prompts, batch):
        tokens = batch["token"]
        scores = torch.tensor([sum(t in ids for t in tokens) / len(tokens) for ids in prompts.token_ids])
        return RewardOutput(scores, {"accuracy": float(scores.mean()), "accuracy/per_prompt": scores})


def votes(token_ids, data):
    """``RowVotes`` as a prompt scorer's ``score``: (texts, scores, logs)."""
    out = RowVotes()(SimpleNamespace(token_ids=token_ids.tolist()), data)
    return [str(list(ids)) for ids in token_ids.tolist()], out.scores.numpy(), out.logs


DEV, TRAIN = {"token": [5, 5, 7]}, {"token": [7] * 6}
BOTH = {"token": DEV["token"] + TRAIN["token"]}


def test_rank_orders_by_reward_or_by_accuracy_then_reward():
    low_acc, high_acc = {"reward": 2.0, "accuracy": 0.5}, {"reward": 1.0, "accuracy": 0.75}
    assert rank(low_acc) > rank(high_acc)  # by reward
    assert rank(high_acc, "accuracy") > rank(low_acc, "accuracy")
    assert rank({"reward": 3.0}, "accuracy") == (3.0,)  # no accuracy logged: the reward alone
    with pytest.raises(ValueError, match="select_by"):
        PromptSelection("loss")


def test_observe_keeps_the_first_of_equals_and_the_better_result_of_a_prompt():
    selection = PromptSelection()
    first, tie, worse_repeat, better_repeat = (candidate([1, 2], 0.5), candidate([3, 4], 0.5),
                                               candidate([1, 2], 0.25), candidate([3, 4], 0.75))
    assert selection.observe(first) and not selection.observe(tie) and selection.best is first
    assert not selection.observe(worse_repeat) and selection.candidates[(1, 2)] is first
    assert selection.observe(better_repeat) and selection.best is better_repeat
    assert list(selection.candidates) == [(1, 2), (3, 4)] and selection.candidates[(3, 4)] is better_repeat


def test_tally_best_samples_and_reselect_counted_by_hand():
    selection = PromptSelection(rescore_top=2, rescore_samples=2)
    for result in (candidate([5, 1], 2 / 3), candidate([1, 2], 0.0), candidate([3, 4], -1.0)):
        selection.observe(result)
    # [7, 7]: 1.0 once (step 1); [3, 3]: 0.5 and 0.75 (mean 0.625, last step 2); [4, 4]: 0.625; [5, 1]: 1.0
    selection.tally(torch.tensor([[7, 7], [3, 3]]), torch.tensor([1.0, 0.5]), step=1)
    selection.tally([[3, 3], [4, 4], [5, 1]], [0.75, 0.625, 1.0], step=2)
    assert selection.sampled[(3, 3)] == [1.25, 2, 2] and selection.sampled[(7, 7)] == [1.0, 1, 1]
    samples = selection.best_samples(3, votes, DEV, exclude=[[5, 1]])
    # by mean training score; [3, 3] and [4, 4] tie at 0.625 and the one sampled twice goes first
    assert [s["token_ids"] for s in samples] == [[7, 7], [3, 3], [4, 4]]
    assert [s["reward"] for s in samples] == pytest.approx([1 / 3, 0.0, 0.0])  # votes of the 3 dev rows
    assert samples[1]["train_reward"] == 0.625 and samples[1]["times_sampled"] == 2
    assert samples[1]["step"] == 2 and samples[0]["accuracy"] == pytest.approx(1 / 3)
    chosen = selection.reselect(votes, DEV, BOTH)
    # the 2 best on dev ([5, 1] 2/3, [1, 2] 0) and the 2 best samples not among them ([7, 7], [3, 3]), on all 9 rows:
    # [5, 1] 2/9, [1, 2] 0, [7, 7] 7/9, [3, 3] 0
    assert chosen["token_ids"] == [7, 7] and chosen["reward"] == pytest.approx(1 / 3)  # its dev figures stay
    selection_record = chosen["selection"]
    assert [c["token_ids"] for c in selection_record["candidates"]] == [[5, 1], [1, 2], [7, 7], [3, 3]]
    assert [c["source"] for c in selection_record["candidates"]] == ["dev", "dev", "sampled", "sampled"]
    assert [c["reward"] for c in selection_record["candidates"]] == pytest.approx([2 / 9, 0.0, 7 / 9, 0.0])
    assert selection_record["examples"] == 9 and selection_record["dev_best"] == "[5, 1]"
    assert selection.best["token_ids"] == [5, 1]  # reselect chooses; keeping its choice is the caller's


def test_a_tie_after_rescoring_keeps_the_better_dev_prompt():
    selection = PromptSelection(rescore_top=3)
    for result in (candidate([9, 9], 0.1), candidate([5, 7], 0.9), candidate([7, 5], 0.5)):
        selection.observe(result)
    chosen = selection.reselect(votes, DEV, BOTH)  # both [5, 7] and [7, 5] hold every voted token: 9/9 each
    assert [c["reward"] for c in chosen["selection"]["candidates"]] == pytest.approx([1.0, 1.0, 0.0])
    assert chosen["token_ids"] == [5, 7]


def test_nothing_to_compare_keeps_the_best_dev_result_and_no_tally_without_samples():
    selection = PromptSelection(rescore_top=5, rescore_samples=0)
    assert selection.reselect(votes, DEV, BOTH) is None  # nothing seen
    selection.observe(candidate([5, 1], 2 / 3))
    selection.tally([[7, 7]], [1.0], step=1)
    assert selection.sampled == {} and selection.reselect(votes, DEV, BOTH) is selection.best
    assert not PromptSelection(rescore_top=1).reselects and PromptSelection(rescore_samples=1).reselects


def test_state_round_trips_and_older_states_load():
    selection = PromptSelection(rescore_samples=1)
    selection.observe(candidate([5, 1], 2 / 3))
    selection.tally([[7, 7]], [1.0], step=3)
    state = selection.state_dict()
    assert state == {"best": candidate([5, 1], 2 / 3), "candidates": [candidate([5, 1], 2 / 3)],
                     "sampled": [[[7, 7], 1.0, 1, 3]]}
    again = PromptSelection(rescore_samples=1)
    again.load_state_dict(state)
    assert again.best == selection.best and again.candidates == selection.candidates
    assert again.sampled == selection.sampled
    older = PromptSelection()
    older.load_state_dict({"best": candidate([1], 0.5)})  # a checkpoint from before candidates and samples
    assert older.candidates == {} and older.sampled == {} and older.best["token_ids"] == [1]


def make_trainer(**options) -> SQLTrainer:
    # dev: 2 rows favour token 5, 1 row token 7; train: 6 rows token 7. On dev alone 5 wins; on all 9 rows, 7.
    dev, train = DEV, TRAIN
    config = SQLConfig(prompt_length=2, steps=2, prompts_per_step=4, lr=1e-2, eval_every=1, seed=0, **options)
    return SQLTrainer(uniform_policy(load_lm("tiny-gpt2", device="cpu"), mlp_width=32), RowVotes(), config,
                      train_data=train, dev_data=dev)


def candidate(ids, reward, accuracy=None):
    return {"step": 1, "text": str(ids), "token_ids": ids, "reward": reward,
            **({"accuracy": accuracy} if accuracy is not None else {})}


def test_the_kept_prompt_is_the_best_on_dev_and_train_together():
    trainer = make_trainer(rescore_top=3)
    for result in (candidate([5, 1], 2 / 3), candidate([7, 1], 1 / 3), candidate([1, 2], 0.0), candidate([3, 4], 0.0)):
        trainer.selection.observe(result)
    chosen = trainer.reselect()
    assert chosen["token_ids"] == [7, 1] and chosen["reward"] == 1 / 3  # its dev figures stay as they were
    selection = chosen["selection"]
    assert selection["examples"] == 9 and selection["dev_best"] == "[5, 1]"
    assert [c["text"] for c in selection["candidates"]] == ["[5, 1]", "[7, 1]", "[1, 2]"]  # the 3 best on dev
    assert [c["reward"] for c in selection["candidates"]] == pytest.approx([2 / 9, 7 / 9, 0.0])  # hand-counted
    assert {c["source"] for c in selection["candidates"]} == {"dev"}  # nothing was sampled


def test_held_out_rows_are_the_dev_rows_not_in_train_unless_most_of_dev_repeats_it():
    dev = {"sentence": ["a", "b", "c", "d"], "label": [0, 1, 0, 1]}
    train = {"sentence": ["a", "c", "x"], "label": [0, 1, 1]}  # "a" with its label is a training row; "c" is not
    assert training_rows(dev, train) == [True, False, False, False]
    assert held_out(dev, train) == {"sentence": ["b", "c", "d"], "label": [1, 0, 1]}
    assert held_out({"sentence": ["a", "x"], "label": [0, 1]}, train) is None  # half of dev is training rows
    assert held_out(train, train) is None and held_out(None, train) is None and held_out({}, train) is None


def test_rescore_on_held_out_scores_the_dev_rows_that_are_not_training_rows():
    trainer = make_trainer(rescore_top=3, rescore_on="held-out")
    for result in (candidate([5, 1], 2 / 3), candidate([7, 1], 1 / 3), candidate([1, 2], 0.0)):
        trainer.selection.observe(result)
    # dev's row 7 is also a training row, so 2 rows remain, both 5: [5, 1] scores 1, [7, 1] 0 (on all 9 rows: [7, 1])
    assert trainer.rescoring_data() == ("held-out", {"token": [5, 5]})
    chosen = trainer.reselect()
    assert chosen["token_ids"] == [5, 1] and chosen["selection"]["on"] == "held-out"
    assert chosen["selection"]["examples"] == 2
    assert [c["reward"] for c in chosen["selection"]["candidates"]] == pytest.approx([1.0, 0.0, 0.0])
    # a dev split that is the training split (Subj's files) holds nothing out: dev and train together, as by default
    repeated = SQLTrainer(trainer.policy, RowVotes(), trainer.config, train_data=TRAIN, dev_data=dict(TRAIN))
    assert repeated.rescoring_data() == ("dev+train", {"token": [7] * 12})
    assert make_trainer().rescoring_data() == ("dev+train", BOTH)


def test_a_training_sample_that_was_never_a_dev_prompt_can_be_kept():
    trainer = make_trainer(rescore_top=2, rescore_samples=2)
    for result in (candidate([5, 1], 2 / 3), candidate([1, 2], 0.0)):
        trainer.selection.observe(result)
    # training scores: [7, 7] once at 1.0; [3, 3] twice (0.5, then 0.9: mean 0.7); [4, 4] at 0.6; [5, 1] at 1.0
    for step, (ids, scores) in enumerate([([[7, 7], [3, 3]], [1.0, 0.5]), ([[3, 3], [4, 4], [5, 1]], [0.9, 0.6, 1.0])]):
        trainer.step = step + 1
        trainer.selection.tally(torch.tensor(ids), torch.tensor(scores), trainer.step)
    assert trainer.selection.sampled[(3, 3)] == [pytest.approx(1.4), 2, 2]
    samples = trainer.selection.best_samples(2, trainer.eval_env.scorer.score, DEV, exclude=[[5, 1]])
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
    assert make_trainer(rescore_top=2, rescore_samples=0).selection.best_samples(0, votes, DEV) == []


def test_one_candidate_or_rescore_top_1_keeps_the_best_on_dev():
    trainer = make_trainer(rescore_top=1, rescore_samples=0)
    trainer.train(progress=False)
    assert "selection" not in trainer.best
    assert trainer.selection.sampled == {}  # nothing is kept when no sample can be chosen
    lone = make_trainer(rescore_top=5)  # nothing sampled yet
    lone.selection.observe(candidate([5, 1], 2 / 3))
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
    assert sources.count("dev") == min(5, len(finished.selection.candidates))
    assert sources.count("sampled") == min(10, len(set(finished.selection.sampled) - set(finished.selection.candidates)))
    assert finished.selection.sampled and sum(times for _, times, _ in finished.selection.sampled.values()) == 6 * 4  # every sample
    assert trained(resume=True).best == finished.best  # a finished run resumed keeps its choice
