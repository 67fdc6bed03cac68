"""accelerate's state of this process and the device it gives it."""

from __future__ import annotations

import torch


def process_state():
    """accelerate's state of this process. Without an accelerator it is created with ``cpu=True``,
    which is what lets several CPU processes (``torchrun``/``accelerate launch``) see each other."""
    from accelerate import PartialState

    return PartialState(cpu=not torch.accelerator.is_available())


def default_device() -> torch.device:
    """The device accelerate assigns to this process (a GPU per rank under ``accelerate launch``)."""
    return process_state().device
