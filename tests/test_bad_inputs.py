"""Every bad input ends in one ``rlprompt-interp: error:`` line that names the problem and the fix, exit status 2,
no traceback; a broken latest checkpoint falls back to the one before it."""

import json
import os
import stat
import subprocess
import sys

import pytest
import torch

from rlprompt_interp.checkpoints import previous_path
from rlprompt_interp.cli import main
from rlprompt_interp.prompts import LearnedPrompt

pytestmark = pytest.mark.usefixtures("single_thread")


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if not line.startswith("rlprompt-interp: warning:")]
    assert len(errors) == 1 and errors[0].startswith("rlprompt-interp: error: "), err
    return errors[0]


@pytest.fixture
def train_args(sst_files, tmp_path):
    return ["train", "--task", "sst-2", "--data-dir", str(sst_files), "--model", "tiny-gpt2", "--prompt-length", "2",
            "--prompts-per-step", "2", "--examples-per-step", "2", "--eval-every", "1", "--mlp-width", "16",
            "--quiet", "--no-test-eval", "--output", str(tmp_path / "run")]


def for_agent(train_args: list[str], flags: list[str]) -> list[str]:
    """``train_args`` without the flags the agent that ``flags`` name does not have (``train`` refuses them)."""
    agent = flags[flags.index("--agent") + 1] if "--agent" in flags else "rlprompt"
    foreign = {"rlprompt": (), "grpo": ("--mlp-width",), "rloo": ("--mlp-width",)}.get(
        agent, ("--mlp-width", "--prompts-per-step", "--examples-per-step"))
    kept = list(train_args)
    for flag in foreign:
        del kept[kept.index(flag):kept.index(flag) + 2]
    return kept


@pytest.mark.parametrize("flags, message", [
    (["--prompt-length", "0"], "--prompt-length must be at least 1, got 0"),
    (["--steps", "0"], "--steps must be at least 1, got 0: a run of no steps learns nothing"),
    (["--prompts-per-step", "1"], "--prompts-per-step 1 with z-scores gives every prompt the shaped reward 0"),
    (["--examples-per-step", "0"], "--examples-per-step must be at least 1"),
    (["--agent", "soft-prompt", "--eval-every", "0"], "--eval-every must be at least 1"),
    (["--lr", "-1"], "--lr must be above 0, got -1"),
    (["--top-p", "1.5"], "--top-p must be above 0 and at most 1"),
    (["--agent", "soft-prompt", "--steps", "0"], "--steps must be at least 1"),
    (["--agent", "nope"], "argument --agent: invalid choice: 'nope'"),
    (["--steps", "ten"], "argument --steps: invalid int value: 'ten' (see `rlprompt-interp train --help`)"),
])
def test_bad_training_flags_are_one_clear_line(train_args, capsys, flags, message):
    assert exit_status(for_agent(train_args, flags) + flags) == 2
    assert message in one_error_line(capsys)


@pytest.mark.parametrize("flags, message", [
    (["--agent", "grpo", "--prompts-per-step", "1"], "--prompts-per-step must be at least 2, got 1: each step's"),
    (["--agent", "rloo", "--prompts-per-step", "1"], "--prompts-per-step must be at least 2, got 1: each step's"),
    (["--agent", "pez", "--mlp-width", "8"], "unrecognized arguments: --mlp-width 8"),  # not one of PEZ's options
    (["--reward", ""], "--reward is empty and no --reward-fn is given"),
    (["--agent", "grpo", "--reward", ""], "--reward is empty and no --reward-fn is given"),
    (["--reward-fn", "m:f=abc"], "--reward-fn weight of 'm:f' is not a number: 'abc'"),
    (["--reward-fn", "my_reward"], "--reward-fn takes MODULE:FUNCTION[=WEIGHT]"),
    (["--reward-fn", "no_such_module_here:score"], "cannot import module 'no_such_module_here'"),
])
def test_bad_reward_and_group_flags_stop_before_any_model_loads(train_args, capsys, flags, message):
    """A model that cannot load shows the check came first: its error would be the line otherwise."""
    argv = [("no/such-model" if arg == "tiny-gpt2" else arg) for arg in for_agent(train_args, flags)]
    assert exit_status(argv + flags) == 2
    assert message in one_error_line(capsys)


@pytest.mark.parametrize("flags, message", [
    (["--init-prompt", "the movie was great fun"], "--init-prompt 'the movie was great fun' is"),
    (["--init-prompt", " great great", "--no-repeat", "1"], "--init-prompt has tokens [' great'] outside the policy's"),
])
def test_a_warm_start_the_policy_cannot_write_is_one_line(train_args, capsys, flags, message):
    """Checked once the policy's tokenizer is there: the length in tokens needs it."""
    assert exit_status(train_args + flags) == 2
    assert message in one_error_line(capsys)


def exit_status(argv) -> int:
    """``main``'s status, also for argparse's usage errors (which exit through SystemExit)."""
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


@pytest.mark.parametrize("argv, message", [
    (["eval"], "the following arguments are required: --task"),
    (["eval", "--task", "sst-2", "--batch-size", "0"], "argument --batch-size: must be at least 1, got 0"),
    (["train", "--task", "sst-2", "--output", "x", "--eval-batch-size", "-2"], "--eval-batch-size must be at least 1"),
])
def test_usage_errors_exit_2_with_one_line(capsys, argv, message):
    assert exit_status(argv) == 2
    assert message in one_error_line(capsys)


def test_checkpoints_keep_the_previous_one_and_fall_back_to_it(train_args, tmp_path, capsys):
    run = tmp_path / "run"
    old = os.umask(0o022)
    try:
        # --rescore-samples 0: with one distinct dev prompt nothing is re-scored at the end, so no third save
        # rotates step 2 into checkpoint.prev.pt
        assert main(train_args + ["--steps", "2", "--rescore-samples", "0"]) == 0
    finally:
        os.umask(old)
    for name in ("prompt.json", "scores.json", "checkpoint.pt", "checkpoint.prev.pt", "best/prompt.json"):
        assert stat.S_IMODE(os.stat(run / name).st_mode) == 0o644, name
    latest = run / "checkpoint.pt"
    assert torch.load(previous_path(latest), weights_only=True)["step"] == 1
    assert torch.load(latest, weights_only=True)["step"] == 2
    capsys.readouterr()

    os.truncate(latest, 1000)  # a copy cut short
    assert main(train_args + ["--steps", "3", "--resume"]) == 0
    err = capsys.readouterr().err
    assert "rlprompt-interp: warning: checkpoint.pt is unreadable (PytorchStreamReader failed" in err
    assert "resuming from the checkpoint before it" in err and "(step 1)" in err
    assert torch.load(latest, weights_only=True)["step"] == 3

    os.truncate(latest, 1000)
    os.truncate(previous_path(latest), 1000)
    assert main(train_args + ["--steps", "4", "--resume"]) == 2
    line = one_error_line(capsys)
    assert "checkpoint.pt is unreadable" in line and "checkpoint.prev.pt is unreadable" in line
    assert "new --output" in line


def test_a_checkpoint_of_another_run_is_refused(train_args, capsys):
    assert main(train_args + ["--steps", "1"]) == 0
    capsys.readouterr()
    other_model = [("tiny-llama" if a == "tiny-gpt2" else a) for a in train_args]
    assert main(other_model + ["--steps", "2", "--resume"]) == 2
    assert "written by another run (policy_model 'tiny-gpt2' there, 'tiny-llama' here" in one_error_line(capsys)
    longer = train_args[:train_args.index("--prompt-length") + 1] + ["3"] + train_args[train_args.index("--prompt-length") + 2:]
    assert main(longer + ["--steps", "2", "--resume"]) == 2
    assert "prompt_length 2 there, 3 here" in one_error_line(capsys)


def test_the_continuous_agents_fall_back_too(sst_files, tmp_path):
    from rlprompt_interp.agents import get_agent
    from rlprompt_interp.notices import RLPromptWarning
    from rlprompt_interp.tasks import get_task

    task = get_task("sst-2", data_dir=str(sst_files))
    agent = lambda: get_agent("soft-prompt", model="tiny-gpt2", eval_every=1, quiet=True)  # noqa: E731
    agent().fit(task, prompt_length=2, steps=2, output_dir=tmp_path)
    os.truncate(tmp_path / "checkpoint.pt", 10)
    with pytest.warns(RLPromptWarning, match="resuming from the checkpoint before it"):
        learned = agent().fit(task, prompt_length=2, steps=3, output_dir=tmp_path, resume=True)
    assert learned.scores["steps_run"] == 3


def test_resume_on_a_truncated_checkpoint_from_the_shell(train_args, tmp_path):
    """The acceptance check as a user runs it: exit status 2, one line, no traceback."""
    assert main(train_args + ["--steps", "1"]) == 0
    previous_path(tmp_path / "run" / "checkpoint.pt").unlink(missing_ok=True)
    os.truncate(tmp_path / "run" / "checkpoint.pt", 1000)
    done = subprocess.run([sys.executable, "-m", "rlprompt_interp", *train_args, "--steps", "2", "--resume"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("rlprompt-interp: error:")]
    assert len(errors) == 1 and "checkpoint.pt is unreadable" in errors[0], done.stderr


def test_broken_learned_prompt_files(tmp_path, capsys):
    folder = tmp_path / "p"
    LearnedPrompt(text="x", token_ids=[1], embeddings=torch.zeros(1, 4)).save(folder)
    good = (folder / "prompt.json").read_text()
    for content, message in [(good[:40], "is not valid JSON"), ("[1, 2]", "is not a learned prompt"),
                             (json.dumps({"text": "x", "colour": 1}), "unknown keys ['colour']")]:
        (folder / "prompt.json").write_text(content)
        assert main(["eval", "--task", "sst-2", "--learned", str(folder), "--quiet"]) == 2
        line = one_error_line(capsys)
        assert message in line and "train the prompt again" in line
    (folder / "prompt.json").write_text(good)
    os.truncate(folder / "embeddings.safetensors", 5)
    assert main(["eval", "--task", "sst-2", "--learned", str(folder), "--quiet"]) == 2
    assert "embeddings.safetensors is missing or unreadable" in one_error_line(capsys)


@pytest.mark.parametrize("content, message", [
    ('{"files": {"test": "t.tsv"}, "verbalizers": [" a", " b"', "is not valid JSON"),
    ('["files"]', "must hold a JSON object"),
    ('{"files": {"test": "t.tsv"}, "verbalizers": " a b"}', "'verbalizers' must be a list of strings"),
    ('{"files": "t.tsv", "verbalizers": [" a", " b"]}', "'files' must be an object of split -> file name"),
])
def test_broken_task_files(tmp_path, capsys, content, message):
    (tmp_path / "task.json").write_text(content)
    assert main(["eval", "--task", str(tmp_path / "task.json"), "--model", "tiny-gpt2", "--quiet"]) == 2
    assert message in one_error_line(capsys)


@pytest.fixture
def own_task(tmp_path):
    """README's own task on a few rows: task.json naming its columns, JSONL files beside it."""
    rows = [("a wonderful, warm film", 1), ("dull and far too long", 0), ("the best acting", 1), ("a mess", 0)]
    for split in ("train", "dev", "test"):
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps({"review": t, "stars": l}) + "\n" for t, l in rows))
    spec = {"name": "reviews", "files": {split: f"{split}.jsonl" for split in ("train", "dev", "test")},
            "verbalizers": [" bad", " good"], "text_column": "review", "label_column": "stars"}
    (tmp_path / "task.json").write_text(json.dumps(spec))
    return tmp_path / "task.json"


def own_train_args(task_file, *flags, model="no/such-model"):
    """`train` on the own task; a model that cannot load shows a check came first (its error would be the line)."""
    return ["train", "--task", str(task_file), "--model", model, "--steps", "2", "--prompt-length", "2",
            "--prompts-per-step", "2", "--examples-per-step", "2", "--mlp-width", "16", "--quiet", "--output",
            str(task_file.parent / "run"), *flags]


@pytest.mark.parametrize("flags, message", [
    (["--dtype", "foo"], "argument --dtype: invalid choice: 'foo' (choose from 'auto', 'float32', 'fp32', "
                         "'bfloat16', 'bf16', 'float16', 'fp16')"),
    (["--eval-dtype", "fp33"], "argument --eval-dtype: invalid choice: 'fp33'"),
    (["--text-column", "text"], "train.jsonl has columns ['review', 'stars'] but not ['text'], which task 'reviews' "
                                "reads: name the right ones with --text-column/--label-column"),
])
def test_bad_values_stop_before_any_model_loads(own_task, capsys, flags, message):
    assert exit_status(own_train_args(own_task, *flags)) == 2
    assert message in one_error_line(capsys)


@pytest.mark.parametrize("command", ["train", "eval", "predict"])
def test_dtype_choices_are_listed_in_help(command, capsys):
    assert exit_status([command, "--help"]) == 0
    assert "--dtype {auto,float32,fp32,bfloat16,bf16,float16,fp16}" in capsys.readouterr().out


def test_a_config_file_with_a_bad_dtype_is_one_line(own_task, capsys):
    (own_task.parent / "config.yaml").write_text("models:\n  dtype: fp33\n")
    assert exit_status(own_train_args(own_task, "--config", str(own_task.parent / "config.yaml"))) == 2
    assert "fp33" in one_error_line(capsys)


@pytest.mark.parametrize("flags", [[], ["--no-test-eval"]])
def test_a_misspelled_file_in_task_json_stops_before_training(own_task, capsys, flags):
    spec = json.loads(own_task.read_text())
    spec["files"]["test"] = "tset.jsonl"
    own_task.write_text(json.dumps(spec))
    assert exit_status(own_train_args(own_task, *flags)) == 2
    assert "tset.jsonl does not exist" in one_error_line(capsys)
    assert not (own_task.parent / "run" / "config.yaml").exists()


def test_a_task_without_a_test_split_asks_for_no_test_eval(own_task, capsys):
    spec = json.loads(own_task.read_text())
    del spec["files"]["test"]
    own_task.write_text(json.dumps(spec))
    assert exit_status(own_train_args(own_task)) == 2
    assert "has no test split to evaluate the learned prompt on" in one_error_line(capsys)


def test_column_flags_are_refused_by_a_built_in_task(sst_files, capsys):
    assert exit_status(["eval", "--task", "sst-2", "--data-dir", str(sst_files), "--text-column", "review",
                        "--model", "no/such-model"]) == 2
    assert "--text-column names the columns of your own files" in one_error_line(capsys)


def test_column_flags_apply_to_a_task_json_and_the_config_records_them(own_task, capsys):
    for split in ("train", "dev", "test"):  # the same rows under other column names
        path = own_task.parent / f"{split}.jsonl"
        path.write_text(path.read_text().replace('"review"', '"text"').replace('"stars"', '"y"'))
    argv = own_train_args(own_task, "--text-column", "text", "--label-column", "y", "--steps", "1", "--no-test-eval",
                          "--rescore-top", "1", "--rescore-samples", "0", model="tiny-gpt2")
    assert main(argv) == 0
    config = (own_task.parent / "run" / "config.yaml").read_text()
    assert "text_column: text" in config and "label_column: y" in config


@pytest.mark.parametrize("flags, message", [
    (["--prompt", " so"], "--prompt TEXT needs --task"),
    (["--learned", "RUN", "--output", "labels.txt"], "--output labels.txt: name a .jsonl, .csv or .tsv file"),
    (["--learned", "RUN", "--input", "missing.jsonl"], "data file missing.jsonl does not exist"),
    (["--learned", "RUN", "--input", "test.jsonl", "--text-column", "body"], "has no column 'body' (--text-column)"),
    (["--prompt", " so", "--task", "TASK", "--input", "test.jsonl", "--dtype", "fp33"], "invalid choice: 'fp33'"),
    (["--learned", "RUN", "--input", "blank.jsonl"], "text 2 is empty (or white space only)"),
])
def test_bad_predict_inputs_stop_before_any_model_loads(own_task, capsys, monkeypatch, flags, message):
    monkeypatch.chdir(own_task.parent)
    (own_task.parent / "blank.jsonl").write_text('{"review": "fine"}\n{"review": " "}\n')
    LearnedPrompt(text=" so", token_ids=[1], provenance={"task": "reviews", "template": "{sentence}{prompt}",
                                                         "verbalizers": [" bad", " good"]}).save("RUN")
    argv = ["predict", "--model", "no/such-model", *[str(own_task) if flag == "TASK" else flag for flag in flags]]
    assert exit_status(argv) == 2
    assert message in one_error_line(capsys)
