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
