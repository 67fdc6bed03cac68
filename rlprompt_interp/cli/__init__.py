"""``rlprompt-interp``: the command line. Each sub-command is a thin shell over the Python API.

One module per sub-command (``cli/eval.py``, ``cli/predict.py``, ``cli/train.py``, ``cli/unembed.py``,
``cli/compare.py``, ``cli/style.py`` for the style-transfer commands), each with a ``register(commands)``
function; the flags and helpers they share
are in ``cli/common.py``. No sub-command module imports another's, and none imports this one.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from ..agents.continuous import ContinuousPromptError
from ..checkpoints import CheckpointError
from ..config import ConfigError
from ..metrics.errors import MetricInputError
from ..models import ModelLoadError
from ..notices import print_as_one_line
from ..prompts import PromptFileError
from ..rewards.base import RewardError
from ..style.classifier import StyleClassifierError
from ..tasks import TaskDataError, TemplateError, UnknownTaskError, VerbalizerError
from ..tracking import TrackingError
from .common import Parser, UsageError, quiet_libraries

USER_ERRORS = (ModelLoadError, TaskDataError, TemplateError, UnknownTaskError, VerbalizerError, FileNotFoundError,
               MetricInputError, ContinuousPromptError, FileExistsError, RewardError, StyleClassifierError,
               CheckpointError, PromptFileError, TrackingError, UsageError, ConfigError)


def build_parser() -> argparse.ArgumentParser:
    from . import compare, predict, style, train, unembed
    from . import eval as evaluate

    parser = Parser(prog="rlprompt-interp", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for module in (evaluate, predict, train, unembed, compare, style):
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_libraries()
    return run_reporting_errors(args.run, args)


def run_reporting_errors(function: Callable[..., int], *args) -> int:
    """``function(*args)`` with the package's warnings and user errors as one line each (errors: exit status 2).

    ``main`` runs every sub-command through it; experiment scripts run their ``main`` through it too.
    """
    print_as_one_line()
    try:
        return function(*args)
    except USER_ERRORS as error:
        message = error.flag_message() if isinstance(error, ConfigError) else error  # name the flag, not the field
        print(f"rlprompt-interp: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
