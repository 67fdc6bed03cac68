"""``--report-to {none,tensorboard,trackio,wandb}``: follow a training run in an experiment tracker.

The trackers are accelerate's (``accelerate.tracking``), started the way ``Accelerator.init_trackers``
starts them, as transformers' and TRL's ``report_to`` do: the run's configuration first, then every
row of the training curve (per step: reward, accuracy, perplexity, entropy, loss, grad norm and what
else the reward logs; every ``--eval-every`` steps the ``dev/`` figures) at its step, and the test
figures at the end. Nothing is imported for ``none``, and only the chosen backend otherwise (accelerate
imports a tracker's package when it starts). Logging happens on the main process only.

    with track_run("tensorboard", "runs/x", config=vars(args)) as tracker:
        agent.on_log = tracker.log_row
        agent.fit(...)

TensorBoard writes its events file under ``<output>/tensorboard/``; wandb and trackio log to their own
servers or folders under the project name ``rlprompt-interp`` with the output folder's name as the run name.
"""

from __future__ import annotations

import argparse
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .config import Config, add_config_arguments, option

REPORT_TO = ("none", "tensorboard", "trackio", "wandb")
PROJECT = "rlprompt-interp"
PACKAGES = {"tensorboard": "tensorboard", "trackio": "trackio", "wandb": "wandb"}


class TrackingError(ValueError):
    """A tracker that cannot start (its package is missing); the message says what to install."""


@dataclass
class TrackingConfig(Config):
    """Where a run reports its curve (the TRL agents hand the same value to their trainer)."""

    report_to: str = option("none", "follow the run in an experiment tracker (accelerate's): tensorboard writes under "
                                    "OUTPUT/tensorboard; needs the tracker's package (pip install tensorboard, "
                                    "trackio or wandb)", choices=REPORT_TO)


def add_report_to_argument(parser) -> list[str]:
    """``--report-to`` for ``train`` and the experiment scripts."""
    return add_config_arguments(parser, TrackingConfig)


class RunTracker:
    """One run in one of accelerate's trackers; ``log_row`` takes the training curve's rows."""

    def __init__(self, tracker):
        self.tracker = tracker

    def log(self, values: dict, step: int | None = None) -> None:
        """Numbers as scalars, strings (e.g. the sampled prompt) as text; anything else is left out."""
        values = {key: value for key, value in values.items()
                  if isinstance(value, (int, float, str)) and not isinstance(value, bool)}
        if values:
            self.tracker.log(values, step=step)

    def log_row(self, row: dict) -> None:
        """A row of a training curve (``{"step": 12, "reward": ..., "dev/accuracy": ...}``) at its step."""
        self.log({key: value for key, value in row.items() if key != "step"}, step=row.get("step"))

    def finish(self) -> None:
        self.tracker.finish()


class NoTracker(RunTracker):
    """``--report-to none``: the same methods, doing nothing."""

    def __init__(self):
        super().__init__(None)

    def log(self, values: dict, step: int | None = None) -> None:
        pass

    def finish(self) -> None:
        pass


def start_tracker(report_to: str, output_dir: str | Path, *, config: dict | None = None,
                  run_name: str | None = None) -> RunTracker:
    """Start ``report_to``'s tracker for a run writing to ``output_dir`` and store ``config`` in it."""
    if report_to in (None, "none"):
        return NoTracker()
    if report_to not in PACKAGES:
        raise TrackingError(f"unknown tracker {report_to!r}; choose one of {list(REPORT_TO)}")
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS, filter_trackers

    output_dir = Path(output_dir)
    if not filter_trackers([report_to], logging_dir=output_dir):  # accelerate leaves out trackers it cannot import
        raise TrackingError(f"--report-to {report_to} needs the {PACKAGES[report_to]} package: pip install "
                            f"'{PACKAGES[report_to]}' (or pip install 'rlprompt-interp[{report_to}]'), or leave "
                            "--report-to out")
    tracker_class = LOGGER_TYPE_TO_CLASS[report_to]
    name = run_name or output_dir.resolve().name
    if tracker_class.requires_logging_directory:  # tensorboard: <output>/tensorboard/<project>
        tracker = tracker_class(PROJECT, output_dir / "tensorboard")
    else:
        tracker = tracker_class(PROJECT, name=name)
    tracker.start()
    tracker.store_init_configuration(plain_config(config or {}))
    return RunTracker(tracker)


@contextlib.contextmanager
def track_run(report_to: str, output_dir: str | Path, *, config: dict | None = None,
              run_name: str | None = None) -> Iterator[RunTracker]:
    """``start_tracker`` for the duration of a ``with`` block; the tracker is finished however it ends."""
    tracker = start_tracker(report_to, output_dir, config=config, run_name=run_name)
    try:
        yield tracker
    finally:
        tracker.finish()


def plain_config(config: dict) -> dict:
    """The configuration as trackers take it (TensorBoard's hparams: numbers, strings and booleans only)."""
    plain = {}
    for key, value in config.items():
        if callable(value) or isinstance(value, argparse.Namespace):
            continue  # argparse's sub-command function
        plain[key] = value if isinstance(value, (bool, int, float, str)) else str(value)
    return plain
