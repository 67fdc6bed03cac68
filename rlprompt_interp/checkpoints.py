"""Training checkpoints that survive a bad file: the previous one is kept, and a run resumes only its own.

Every save renames the checkpoint it replaces to ``checkpoint.prev.pt`` once the new one is
complete, so a truncated or corrupt ``checkpoint.pt`` (a full disk, a copy cut short) falls back
to the one before it, with a warning that says so. Each checkpoint records what run wrote it (its
``identity``: method, models, prompt length, parameter shapes); resuming a folder written by
another run is refused with a message that names the difference, instead of a shape error from
``load_state_dict``. Used by the soft Q-learning trainer and by the continuous-prompt agents.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .atomic import write_atomic
from .notices import warn


CHECKPOINT_FILE = "checkpoint.pt"  # every agent's training checkpoint in its output folder


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed (unreadable, or written by another run); the message names the fix."""


def previous_path(path: str | Path) -> Path:
    """``checkpoint.pt`` -> ``checkpoint.prev.pt``: the checkpoint saved before the latest one."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def has_checkpoint(path: str | Path) -> bool:
    """Whether there is anything to resume at ``path`` (the latest checkpoint or the one before it)."""
    return Path(path).is_file() or previous_path(path).is_file()


def save_checkpoint(path: str | Path, state: dict, identity: dict) -> Path:
    """Write ``state`` (with ``identity``) atomically; the checkpoint it replaces becomes ``checkpoint.prev.pt``."""
    path = Path(path)
    payload = {**state, "identity": identity}
    return write_atomic(path, lambda tmp: torch.save(payload, tmp), keep_previous=previous_path(path))


def load_checkpoint(path: str | Path, identity: dict, *, map_location=None) -> dict | None:
    """The state saved at ``path``, or the previous one when the latest is missing or unreadable (with a
    warning); ``None`` when there is neither. A checkpoint of another run raises :class:`CheckpointError`."""
    path = Path(path)
    problems = []
    for candidate in (path, previous_path(path)):
        if not candidate.is_file():
            problems.append(f"{candidate.name} is missing")
            continue
        try:
            state = torch.load(candidate, map_location=map_location, weights_only=True)
        except Exception as error:  # torch reports a truncated zip, a bad pickle... in several exception types
            problems.append(f"{candidate.name} is unreadable ({_first_line(error)})")
            continue
        check_identity(candidate, state, identity)
        if candidate != path:
            warn(f"{problems[0]}; resuming from the checkpoint before it, {candidate} (step {state.get('step', '?')})")
        return state
    if not any("unreadable" in problem for problem in problems):
        return None
    raise CheckpointError(f"cannot resume from {path.parent}: {'; '.join(problems)} (a truncated or corrupt file); "
                          f"train again with a new --output, or delete {path.name} and {previous_path(path).name} to "
                          "start over in this folder")


def check_identity(path: Path, state: dict, identity: dict) -> None:
    recorded = state.get("identity") or {}
    different = [(key, recorded[key], value) for key, value in identity.items()
                 if key in recorded and recorded[key] != value]
    if different:
        details = "; ".join(f"{key} {old!r} there, {new!r} here" + (f" (pass --dtype {old})" if key == "dtype" else "")
                            for key, old, new in different)
        raise CheckpointError(f"cannot resume from {path}: it was written by another run ({details}); resume with the "
                              "settings it was written with, or choose a new --output")


def parameter_shapes(module: torch.nn.Module) -> list[list[int]]:
    """The shapes of a module's parameters, as plain lists (they go into a checkpoint's identity)."""
    return [list(parameter.shape) for parameter in module.parameters()]


def _first_line(error: Exception) -> str:
    """The gist of a load error: its first sentence (torch's zip errors run on for lines)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else error.__class__.__name__
    return text.split(". ")[0].rstrip(".")[:160]
