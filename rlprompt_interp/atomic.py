"""Atomic file writes: a killed run leaves the previous file or the new one, never half of one.

Checkpoints, learned prompts, reports, sweep records and caches all go through :func:`write_atomic`
(folders through :func:`write_folder_atomic`). The result gets the mode any new file gets under the
user's umask (0644 under the usual 022), not the 0600 of the temporary file it was written as, so a
teammate can read a shared run folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable


def umask_mode(base: int = 0o666) -> int:
    """``base`` as the current umask leaves it: what ``open()`` (0o666) or ``mkdir()`` (0o777) would create."""
    mask = os.umask(0)
    os.umask(mask)
    return base & ~mask


def write_atomic(path: str | Path, write: Callable[[str], Any], *, keep_previous: str | Path | None = None) -> Path:
    """Call ``write(tmp)`` on a temporary file next to ``path``, then rename it over ``path``.

    ``keep_previous``: where the file being replaced goes (renamed, once the new one is complete).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(handle)
    try:
        write(tmp)
        os.chmod(tmp, umask_mode())
        if keep_previous is not None and path.exists():
            os.replace(path, keep_previous)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_folder_atomic(folder: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` on a temporary sibling folder, then swap it in for ``folder`` (the old one removed)."""
    folder = Path(folder).expanduser()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
    try:
        write(tmp)
        os.chmod(tmp, umask_mode(0o777))
        if folder.exists():
            old = folder.with_name(folder.name + ".old")
            os.replace(folder, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _to_json(value: Any):
    """Numbers JSON does not know (tensors, numpy scalars) as floats; anything else (paths...) as text."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """``data`` as indented JSON (numbers through ``float``, other values through ``str``), written atomically."""
    return write_atomic(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2, default=_to_json)))
