"""Where an experiment's few-shot data comes from: the shared folders when they are there, else the hub.

``make sweep`` and ``make demo`` run on RLPrompt's 16-shot files in ``../shared/data/few-shot`` of a
development checkout. A user elsewhere has no such folder: there the same 16-shot setting is drawn
from the hub (``get_task(..., shots=16, split_seed=42)``: 16 training and 16 dev examples per class
from the hub's train split, the test split whole). Offline with neither, the error says how to get
the data instead of pointing at a folder that does not exist.
"""

from __future__ import annotations

import os
from pathlib import Path

from .data import TaskDataError

SHARED_FEW_SHOT = Path(__file__).resolve().parents[3] / "shared" / "data" / "few-shot"  # of a development checkout
AUTO, HUB = "auto", "hub"


def hub_is_off() -> bool:
    """Whether ``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE`` keep ``datasets`` from reaching the hub."""
    return any(os.environ.get(name, "").strip().lower() in ("1", "on", "yes", "true")
               for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def split_name(seed_split: str) -> tuple[int, int]:
    """``"16-42"`` -> (16 shots, seed 42), RLPrompt's names for its few-shot folders."""
    shots, sep, seed = str(seed_split).partition("-")
    if not sep or not shots.isdigit() or not seed.lstrip("-").isdigit() or int(shots) < 1:
        raise TaskDataError(f"a few-shot split is named SHOTS-SEED, e.g. 16-42; got {seed_split!r}")
    return int(shots), int(seed)


def few_shot_source(data_dir: str | None = AUTO, seed_split: str = "16-42") -> tuple[dict, str]:
    """``(get_task keywords, a line saying which)`` for ``data_dir``: a folder, ``"hub"``, or ``"auto"`` (the
    shared folder when it exists, else the hub), with the K-shot split ``seed_split``."""
    data_dir = AUTO if data_dir in (None, "") else str(data_dir)
    if data_dir == AUTO and SHARED_FEW_SHOT.is_dir():
        data_dir = str(SHARED_FEW_SHOT)
    if data_dir not in (AUTO, HUB):
        return {"data_dir": data_dir, "seed": seed_split}, f"RLPrompt's {seed_split} few-shot files in {data_dir}"
    shots, seed = split_name(seed_split)
    absent = f"{SHARED_FEW_SHOT} is absent" if data_dir == AUTO else "--data-dir hub"
    if hub_is_off():
        raise TaskDataError(
            f"no few-shot data: {absent}, and the hub is switched off (HF_HUB_OFFLINE or HF_DATASETS_OFFLINE is set). "
            f"Unset them to draw the {shots}-shot split from the hub, or pass --data-dir with RLPrompt's few-shot "
            "folders (<task>/<shots>-<seed>/{train,dev}.tsv and <task>/test.tsv)")
    return ({"data_dir": None, "shots": shots, "split_seed": seed},
            f"{absent}: {shots} training and {shots} dev examples per class drawn from the hub's train split "
            f"(seed {seed}), its test split whole")
