"""Few-shot splits from the hub (K per class, seeded, the test split whole) and where the scripts find data."""

from collections import Counter

import pytest

from conftest import load_experiment
from rlprompt_interp.cli import main, run_reporting_errors
from rlprompt_interp.tasks import ClassificationTask, HubSource, Template, TaskDataError, get_task
from rlprompt_interp.tasks import sources


@pytest.fixture
def hub_folder(tmp_path):
    """A dataset folder that ``datasets.load_dataset(path)`` reads like a hub repository (train and test CSVs)."""
    folder = tmp_path / "hub-sst2"
    folder.mkdir()
    rows = [(f"sentence {i}", i % 2) for i in range(60)] + [("   ", 0)]
    (folder / "train.csv").write_text("text,label\n" + "".join(f"{s},{l}\n" for s, l in rows))
    (folder / "test.csv").write_text("text,label\n" + "".join(f"test {i},{i % 2}\n" for i in range(9)))
    return folder


def hub_task(folder, shots, split_seed=42):
    return ClassificationTask(name="sst-2", verbalizers=(" terrible", " great"), template=Template("{sentence} {prompt}"),
                              hub=HubSource(str(folder)), shots=shots, split_seed=split_seed)


def test_k_shot_draw_from_the_hub_train_split(hub_folder):
    task = hub_task(hub_folder, shots=4)
    with pytest.warns(UserWarning, match="left out 1 example"):  # the blank row goes before the draw
        train = task.load_split("train")
    dev, test = task.load_split("dev"), task.load_split("test")
    assert Counter(train["label"]) == Counter(dev["label"]) == {0: 4, 1: 4}
    assert not set(train["sentence"]) & set(dev["sentence"])
    assert len(test) == 9  # the test split whole
    again = hub_task(hub_folder, shots=4)
    assert again.load_split("train")["sentence"] == train["sentence"]  # reproducible
    assert hub_task(hub_folder, shots=4, split_seed=13).load_split("train")["sentence"] != train["sentence"]
    assert "4 training and 4 dev examples per class" in task.describe_source()
    with pytest.warns(UserWarning, match=r"fewer than 25 examples left for the dev split of classes \{'terrible': 5"):
        assert len(hub_task(hub_folder, shots=25).load_split("dev")) == 10
    with pytest.raises(TaskDataError, match="no examples left for a 40-shot dev split"):
        hub_task(hub_folder, shots=40).load_split("dev")


def test_shots_pick_the_local_folder_and_bad_combinations_are_refused(sst_files, capsys):
    assert get_task("sst-2", data_dir=str(sst_files), shots=16).seed == "16-42"
    assert get_task("sst-2", data_dir=str(sst_files), shots=8, split_seed=3).seed == "8-3"
    hub = get_task("sst-2", shots=16, split_seed=13)
    assert hub.shots == 16 and hub.split_seed == 13 and hub.data_dir is None
    assert get_task("boolq", shots=16).shots == 16
    assert main(["eval", "--task", "mine", "--data-files", "test=x.tsv", "--verbalizers", " a", " b", "--shots", "16",
                 "--quiet"]) == 2
    assert "--data-files gives the splits themselves" in capsys.readouterr().err
    assert main(["eval", "--task", "sst-2", "--split-seed", "3", "--quiet"]) == 2
    assert "give --shots K too" in capsys.readouterr().err


def test_scripts_use_the_shared_folder_when_it_is_there_and_the_hub_otherwise(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "SHARED_FEW_SHOT", tmp_path)
    assert sources.few_shot_source("auto")[0] == {"data_dir": str(tmp_path), "seed": "16-42"}
    monkeypatch.setattr(sources, "SHARED_FEW_SHOT", tmp_path / "absent")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    source, where = sources.few_shot_source("auto", "16-13")
    assert source == {"data_dir": None, "shots": 16, "split_seed": 13} and "is absent: 16 training" in where
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(TaskDataError, match="no few-shot data: .* and the hub is switched off"):
        sources.few_shot_source("hub")
    with pytest.raises(TaskDataError, match="SHOTS-SEED"):
        sources.few_shot_source("hub", "sixteen")


def test_the_sweep_offline_without_data_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sources, "SHARED_FEW_SHOT", tmp_path / "absent")
    sweep = load_experiment("sst2_ppl_sweep")
    assert run_reporting_errors(sweep.main, ["--quick", "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rlprompt-interp: error: no few-shot data:")
    assert "Unset them to draw the 16-shot split from the hub, or pass --data-dir" in err[0]
