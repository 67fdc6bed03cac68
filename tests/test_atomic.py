"""Atomic writes leave whole files with the mode the user's umask gives any new file."""

import json
import os
import stat

import pytest
import torch

from rlprompt_interp.atomic import write_atomic, write_folder_atomic, write_json_atomic
from rlprompt_interp.prompts import LearnedPrompt


@pytest.fixture(params=[0o022, 0o027])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_files_and_folders_follow_the_umask(tmp_path, umask):
    write_json_atomic(tmp_path / "a.json", {"x": torch.tensor(0.5)})
    write_atomic(tmp_path / "b.pt", lambda tmp: torch.save({"w": torch.ones(2)}, tmp))
    write_folder_atomic(tmp_path / "folder", lambda tmp: (tmp / "inside.txt").write_text("hi"))
    for name in ("a.json", "b.pt", "folder/inside.txt"):
        assert mode(tmp_path / name) == 0o666 & ~umask, name
    assert mode(tmp_path / "folder") == 0o777 & ~umask
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 0.5}  # tensors as numbers


def test_learned_prompt_files_are_0644_under_umask_022(tmp_path):
    old = os.umask(0o022)
    try:
        LearnedPrompt(text="x", token_ids=[1], embeddings=torch.zeros(1, 4)).save(tmp_path)
    finally:
        os.umask(old)
    assert mode(tmp_path / "prompt.json") == 0o644 and mode(tmp_path / "embeddings.safetensors") == 0o644


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    write_json_atomic(tmp_path / "a.json", {"v": 1})

    def fail(tmp):
        open(tmp, "w").write("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(tmp_path / "a.json", fail)
    assert '"v": 1' in (tmp_path / "a.json").read_text() and os.listdir(tmp_path) == ["a.json"]
