"""The gymnasium environments: the API checker, random actions, one reward call per vector step."""

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from rlprompt_interp.envs import ENV_ID, PromptEnv, PromptVectorEnv
from rlprompt_interp.models import load_lm
from rlprompt_interp.rewards import Reward, RewardOutput

TARGET = set(range(100, 110))


class CountingReward(Reward):
    """Fraction of prompt tokens in TARGET; counts its calls and the prompts per call."""

    name = "fraction"

    def __init__(self):
        self.calls = []

    def __call__(self, prompts, batch):
        self.calls.append((len(prompts), dict(batch)))
        scores = torch.tensor([sum(t in TARGET for t in ids) / len(ids) for ids in prompts.token_ids])
        return RewardOutput(scores, {"fraction": float(scores.mean()), "fraction/per_prompt": scores})


@pytest.fixture
def tokenizer():
    return load_lm("tiny-gpt2", device="cpu").tokenizer


def test_registered_env_passes_the_checker(tokenizer):
    env = gymnasium.make(ENV_ID, reward=CountingReward(), tokenizer=tokenizer, prompt_length=4)
    check_env(env.unwrapped)


def test_episode_with_random_actions(tokenizer):
    reward = CountingReward()
    data = {"sentence": ["a", "b", "c"], "label": [0, 1, 0]}
    env = PromptEnv(reward, tokenizer, prompt_length=3, data=data, examples_per_episode=2)
    env.action_space.seed(0)
    obs, _ = env.reset(seed=0)
    assert obs["length"] == 0 and obs["token_ids"].tolist() == [0, 0, 0]
    for t in range(3):
        action = env.action_space.sample() if t else 105  # one token from the target set
        obs, r, terminated, truncated, info = env.step(action)
        assert not truncated and terminated == (t == 2)
        if t < 2:
            assert r == 0.0 and info == {}
    assert obs["length"] == 3 and obs["token_ids"][0] == 105
    assert r >= 1 / 3 and info["text"] == tokenizer.decode(obs["token_ids"].tolist())
    assert info["fraction"] == pytest.approx(r)
    assert len(reward.calls) == 1 and len(reward.calls[0][1]["label"]) == 2
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def test_vector_env_calls_the_reward_once_per_batch(tokenizer):
    reward = CountingReward()
    envs = PromptVectorEnv(6, reward, tokenizer, prompt_length=5)
    obs, _ = envs.reset(seed=1)
    assert obs["token_ids"].shape == (6, 5) and envs.action_space.shape == (6,)
    for round_ in range(2):
        for t in range(5):
            actions = envs.action_space.sample()
            actions[0] = 101  # env 0 writes only target tokens
            obs, rewards, terminated, truncated, infos = envs.step(actions)
            assert terminated.all() == (t == 4) and not truncated.any()
        assert rewards[0] == 1.0 and rewards.shape == (6,)
        assert infos["fraction/per_prompt"][0] == 1.0 and len(infos["text"]) == 6
        assert len(reward.calls) == round_ + 1 and reward.calls[-1][0] == 6  # one call, all six prompts
        obs, rewards, terminated, _, _ = envs.step(envs.action_space.sample())  # next-step autoreset
        assert (obs["length"] == 0).all() and not terminated.any() and (rewards == 0).all()
    assert len(reward.calls) == 2


def test_vector_env_from_gymnasium_make_vec(tokenizer):
    envs = gymnasium.make_vec(ENV_ID, num_envs=3, vectorization_mode="vector_entry_point",
                              reward=CountingReward(), tokenizer=tokenizer, prompt_length=2)
    envs.reset(seed=0)
    _, rewards, terminated, _, _ = envs.step(np.array([101, 1, 2]))
    _, rewards, terminated, _, _ = envs.step(np.array([101, 1, 2]))
    assert terminated.all() and rewards[0] == 1.0


def test_bad_actions_are_refused(tokenizer):
    env = PromptEnv(CountingReward(), tokenizer, prompt_length=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="token id"):
        env.step(len(tokenizer) + 5)


def test_import_rlprompt_interp_registers_the_ids_without_torch():
    """As gymnasium packages do: the id exists after ``import rlprompt_interp`` alone, whose import stays
    light (lazy entry-point strings: neither torch nor the environments module is imported)."""
    import subprocess
    import sys

    code = ("import sys, gymnasium as gym, rlprompt_interp\n"
            "spec = gym.spec('rlprompt_interp/Prompt-v0')\n"
            "assert spec.entry_point == 'rlprompt_interp.envs.prompt_env:PromptEnv', spec.entry_point\n"
            "assert spec.vector_entry_point == 'rlprompt_interp.envs.prompt_env:PromptVectorEnv'\n"
            "heavy = [m for m in ('torch', 'transformers', 'rlprompt_interp.envs') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_make_and_make_vec_build_the_registered_envs(tokenizer):
    env = gymnasium.make(ENV_ID, reward=lambda prompts, **batch: [0.0] * len(prompts), tokenizer=tokenizer,
                         prompt_length=2)
    env.reset(seed=0)
    assert env.step(5)[2] is False and env.step(7)[2] is True
    vec = gymnasium.make_vec(ENV_ID, num_envs=3, vectorization_mode="vector_entry_point", tokenizer=tokenizer,
                             reward=lambda prompts, **batch: [1.0] * len(prompts), prompt_length=1)
    assert isinstance(vec.unwrapped, PromptVectorEnv)
    vec.reset(seed=0)
    assert vec.step([1, 2, 3])[1].tolist() == [1.0, 1.0, 1.0]


def test_stratified_draws_hold_every_class_equally_often():
    from rlprompt_interp.envs.prompt_env import stratified_rows

    labels = [0] * 6 + [1] * 4 + [2] * 1  # 11 rows; 6 wanted -> 2 of each class, all of class 2's one row
    rows = stratified_rows(np.random.default_rng(0), labels, 6)
    assert sorted(labels[i] for i in rows) == [0, 0, 1, 1, 2]
    assert len(set(rows.tolist())) == len(rows)  # without replacement
    # through the vector env: every round's batch of 4 from two classes holds 2 of each
    data = {"sentence": [f"s{i}" for i in range(20)], "label": [0] * 15 + [1] * 5}
    reward = CountingReward()
    env = PromptVectorEnv(2, reward, load_lm("tiny-gpt2", device="cpu").tokenizer, 1, data=data,
                          examples_per_episode=4, stratify_by="label")
    env.reset(seed=0)
    for _ in range(5):
        env.step(np.array([1, 2]))
        env.step(np.array([0, 0]))  # next-step autoreset: a new batch
    assert all(sorted(batch["label"]) == [0, 0, 1, 1] for _, batch in reward.calls)
    with pytest.raises(ValueError, match="stratify"):
        PromptVectorEnv(2, reward, load_lm("tiny-gpt2", device="cpu").tokenizer, 1, data=data, stratify_by="stars")


def test_a_dev_split_that_repeats_the_training_split_is_named(tmp_path):
    # RLPrompt's Subj files give the training sentences again as dev: choosing a prompt there is choosing on train
    import warnings

    from rlprompt_interp.agents.rlprompt import training_splits
    from rlprompt_interp.tasks import task_from_files

    rows = "sentence\tlabel\n" + "".join(f"sentence {i}\t{i % 2}\n" for i in range(8))
    other = "sentence\tlabel\n" + "".join(f"another {i}\t{i % 2}\n" for i in range(8))
    for name, text in {"train.tsv": rows, "same.tsv": rows, "other.tsv": other}.items():
        (tmp_path / name).write_text(text)
    make = lambda dev: task_from_files("mine", {"train": tmp_path / "train.tsv", "dev": tmp_path / dev},  # noqa: E731
                                       template="{sentence} {prompt}", verbalizers=[" no", " yes"])
    with pytest.warns(UserWarning, match="8 of the 8 dev examples of task 'mine' are training examples"):
        train, dev = training_splits(make("same.tsv"))
    assert train == dev
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train, dev = training_splits(make("other.tsv"))
    assert dev["sentence"][0] == "another 0"
