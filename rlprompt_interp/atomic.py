"""Atomic file writes: a killed run leaves the previous file or the new one, never half of one.

Checkpoints, learned prompts, sweep records and caches all go through :func:`write_atomic`.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def write_atomic(path: str | Path, write: Callable[[str], Any]) -> Path:
    """Call ``write(tmp)`` on a temporary file next to ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(handle)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """``data`` as indented JSON (non-JSON values through ``str``), written atomically."""
    return write_atomic(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2, default=str)))
