"""One interface for every prompt-learning method, so one evaluation compares them all."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable

from ..checkpoints import CHECKPOINT_FILE, has_checkpoint
from ..prompts import LearnedPrompt
from ..tasks import ClassificationTask


class Agent(ABC):
    """Learns a prompt for a task: ``fit(task, prompt_length=..., steps=..., seed=...) -> LearnedPrompt``.

    Given ``output_dir=``, ``fit`` keeps its checkpoint there and saves the returned prompt there too,
    so the folder is what ``rlprompt-interp eval --learned`` reads.
    """

    name: str = "agent"
    # its options, one field each (``config.option``): a Config, or an AgentConfig of several sections;
    # ``train``'s flags, ``--config`` and the run's config.yaml come from it
    config_class: type
    dtype: str = "auto"  # the frozen models' dtype while training (``models.resolve_dtype``)
    default_steps: int | None = 1000  # the run length when ``train`` is given no --steps (None: the agent's time budget)
    # called with each row of the training curve as it is written (``tracking.RunTracker.log_row`` for --report-to)
    on_log: Callable[[dict], None] | None = None

    @abstractmethod
    def fit(self, task: ClassificationTask, *, prompt_length: int, steps: int, seed: int = 0, **kwargs) -> LearnedPrompt:
        ...

    @classmethod
    def add_deprecated_arguments(cls, parser) -> None:
        """Old flag spellings that are not one field's alias (``train`` adds them, hidden from ``--help``)."""

    def has_checkpoint(self, output_dir: str | Path) -> bool:
        """Whether ``output_dir`` holds a training checkpoint that ``fit(..., resume=True)`` continues."""
        return has_checkpoint(Path(output_dir) / CHECKPOINT_FILE)  # or the checkpoint.prev.pt kept beside it
