"""One interface for every prompt-learning method, so one evaluation compares them all."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable

from ..prompts import LearnedPrompt
from ..tasks import ClassificationTask


class Agent(ABC):
    """Learns a prompt for a task: ``fit(task, prompt_length=..., steps=..., seed=...) -> LearnedPrompt``.

    Given ``output_dir=``, ``fit`` keeps its checkpoint there and saves the returned prompt there too,
    so the folder is what ``rlprompt-interp eval --learned`` reads.
    """

    name: str = "agent"
    # called with each row of the training curve as it is written (``tracking.RunTracker.log_row`` for --report-to)
    on_log: Callable[[dict], None] | None = None

    @abstractmethod
    def fit(self, task: ClassificationTask, *, prompt_length: int, steps: int, seed: int = 0, **kwargs) -> LearnedPrompt:
        ...
