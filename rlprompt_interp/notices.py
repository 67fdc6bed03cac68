"""The package's warnings: one category, so the command line can print each as one plain line.

``warn(message)`` is ``warnings.warn`` with :class:`RLPromptWarning`; Python code sees ordinary
warnings (``pytest.warns``, ``warnings.filterwarnings``), and ``rlprompt-interp`` prints
``rlprompt-interp: warning: <message>`` on stderr instead of a file name and line number.
"""

from __future__ import annotations

import sys
import warnings


class RLPromptWarning(UserWarning):
    """Something the user should know about their data, task or run; the message names what and where."""


def warn(message: str) -> None:
    warnings.warn(message, RLPromptWarning, stacklevel=3)


def deprecated_names(module: str, renamed: dict[str, tuple[str, object]]):
    """A module ``__getattr__`` (PEP 562) that still gives each old name, ``{old: (new name, object)}``, with a
    warning that names its replacement (``from module import Old`` warns as well)."""

    def __getattr__(name: str):
        if name in renamed:
            new, value = renamed[name]
            warnings.warn(f"{module}.{name} is deprecated; use {new}", RLPromptWarning, stacklevel=2)
            return value
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__


def print_as_one_line() -> None:
    """Show :class:`RLPromptWarning` as ``rlprompt-interp: warning: ...`` lines (other warnings as before)."""
    original = warnings.showwarning
    if getattr(original, "one_line", False):
        return

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, RLPromptWarning):
            print(f"rlprompt-interp: warning: {message}", file=file or sys.stderr)
        else:
            original(message, category, filename, lineno, file, line)

    show.one_line = True
    warnings.showwarning = show
