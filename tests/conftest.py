import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach the model hub
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# `--dtype auto` means fp32 in every test, whatever the CPU: tests that compare numbers then agree on a
# CPU with bf16 instructions too. Tests of the bf16 path ask for it with the `bf16_cpu` fixture.
os.environ["RLPROMPT_INTERP_CPU_BF16"] = "0"

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FEW_SHOT = SHARED_DATA / "few-shot"


def needs_shared_data():
    return pytest.mark.skipif(not FEW_SHOT.is_dir(), reason=f"shared data folder {FEW_SHOT} is absent")


@pytest.fixture
def bf16_cpu(monkeypatch):
    """This CPU taken for one with bf16 instructions (AMX / AVX512-BF16), so `auto` resolves to bf16 as it
    does there: the code path such a machine runs by default, exercised on every machine (tiny models:
    emulated bf16 is slow)."""
    monkeypatch.setenv("RLPROMPT_INTERP_CPU_BF16", "1")


@pytest.fixture
def tiny_gpt2():
    from rlprompt_interp.models import load_lm

    return load_lm("tiny-gpt2", device="cpu")


@pytest.fixture
def sst_files(tmp_path):
    """A tiny SST-2-like task on disk: train/dev/test TSV files in RLPrompt's few-shot layout."""
    rows = [("the movie was great fun", 1), ("an awful boring film", 0), ("really good acting", 1),
            ("the worst plot", 0), ("beautiful and funny", 1), ("sad and boring", 0)]
    task_dir = tmp_path / "sst-2"
    (task_dir / "16-42").mkdir(parents=True)
    text = "sentence\tlabel\n" + "".join(f"{s}\t{l}\n" for s, l in rows)
    for path in (task_dir / "16-42" / "train.tsv", task_dir / "16-42" / "dev.tsv", task_dir / "test.tsv"):
        path.write_text(text)
    return tmp_path


@pytest.fixture
def single_thread():
    """One torch thread for tests on tiny matrices: more threads only add synchronisation, which
    turns seconds into minutes on a busy machine. Use with ``pytest.mark.usefixtures``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def load_experiment(name: str):
    """Import ``experiments/<name>.py`` as a module (the folder is scripts, not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "experiments" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"experiments_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cli_sub_commands() -> dict:
    """``rlprompt-interp``'s sub-command parsers by name (``train``, ``eval`` ...)."""
    import argparse

    from rlprompt_interp.cli import build_parser

    parser = build_parser()
    return next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction)).choices


def result_times(output, skip=None) -> dict:
    """Modification time of every finished cell's ``result.json`` in a sweep folder, except ``skip``'s:
    equal before and after a re-run means the re-run read those cells back instead of redoing them."""
    return {path: path.stat().st_mtime_ns for path in Path(output).glob("cells/*/result.json") if path.parent != skip}


def empty_folder(folder) -> None:
    """Delete every file below ``folder`` (a cell about to be re-run from scratch)."""
    for path in Path(folder).rglob("*"):
        if path.is_file():
            path.unlink()


def run_until_killed(main, argv, killed) -> None:
    """Run a sweep script whose training was patched to raise KeyboardInterrupt mid-cell: the killed
    cell must be left with its checkpoint and without a result."""
    with pytest.raises(KeyboardInterrupt):
        main(argv)
    assert (Path(killed) / "train" / "checkpoint.pt").is_file() and not (Path(killed) / "result.json").exists()
