"""What every experiment script shares: its modes, its command line, its finish and its entry point.

An experiment's modes are data: ``experiments/recipes/<script>.yaml`` holds one mapping per mode
(``quick``, ``full``; the first is the default), each a setting per line plus ``about`` (the mode's
one-line description), and ``help``, a line per setting. Relative paths (``../shared/...``) in a
recipe are read from the repository root, the folder above ``experiments/``.
:func:`experiment_parser` gives the parser each script starts from: ``--quick``/``--full``, a flag per
setting (left unset, it takes the chosen mode's value), ``--config FILE`` (YAML or JSON, flags
overriding it), ``--output``, ``--threads`` and ``--report-to``. :func:`parse_experiment_args` applies
the mode, the default output folder and the thread count, and returns arguments whose
:meth:`ExperimentArgs.settings` lists what the cells share (the parser's ``shared`` flags and the mode's
settings but the grid's ``axes``). The rest is the finish every script shares: :func:`run_cells` runs the
grid's cells (resumable, spread over processes) and hands the records to the main process alone;
:func:`markdown_document` and :func:`write_results` write and print the results; :func:`run_script` runs
``main`` with the package's one-line user errors.

    parser = experiment_parser(__doc__, __file__, axes=("seeds",))   # experiments/recipes/<script>.yaml
    args = parse_experiment_args(parser, argv)
    records = run_cells(args, grid(seed=args.seeds), run_cell)       # None on the other processes
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml

from .atomic import write_json_atomic
from .cli.common import Parser
from .config import ConfigError
from .sweeps import add_mode_arguments, apply_mode
from .tracking import add_report_to_argument


def read_modes(path: str | Path) -> tuple[dict, dict, dict]:
    """``(modes, descriptions, settings_help)`` of an experiment's recipe file (see the module docstring)."""
    path = Path(path)
    try:
        recipe = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError("--config", f"cannot read the experiment's modes {path}: {error}") from None
    settings_help = recipe.pop("help", {})
    root = path.resolve().parents[2]  # experiments/recipes/NAME.yaml -> the repository
    modes, descriptions = {}, {}
    for mode, settings in recipe.items():
        descriptions[mode] = settings.pop("about")
        modes[mode] = {key: os.path.normpath(root / value) if str(value).startswith(("./", "../")) else value
                       for key, value in settings.items()}
    return modes, descriptions, settings_help


class ExperimentArgs(argparse.Namespace):
    """Parsed arguments that know the names of their mode's settings (a class attribute: ``vars(args)`` holds
    the values alone, as ``results.json`` records them)."""

    mode_settings: tuple[str, ...] = ()
    shared: tuple[str, ...] = ()  # flags outside the recipe that every cell shares (``experiment_parser``)
    axes: tuple[str, ...] = ()  # the grid's settings, which a re-run may change (seeds may be added...)

    def settings(self, *extra: str, leave_out=None) -> dict:
        """What every cell shares, for ``Sweep``'s check that a re-run uses the same: the mode, its settings but
        ``leave_out`` (the grid's axes, which may grow), and the ``extra`` flags; by default the parser's
        ``axes`` and ``shared``."""
        extra, leave_out = extra or self.shared, self.axes if leave_out is None else leave_out
        keys = ["mode", *(key for key in self.mode_settings if key not in leave_out), *extra]
        return {key: getattr(self, key) for key in keys}


def experiment_parser(doc: str, script: str, *, name: str | None = None, options: Mapping[str, Mapping] | None = None,
                      axes: tuple[str, ...] = (), shared: tuple[str, ...] = ()) -> Parser:
    """The parser of the experiment in ``script`` (its ``__file__``), its modes read from
    ``recipes/<script's stem>.yaml`` beside it; the output folder defaults to ``runs/<name>-<mode>`` (``name``:
    the stem with dashes). ``axes`` (settings the grid sweeps) and ``shared`` (flags the script adds) make
    :meth:`ExperimentArgs.settings`'s default.

    Each setting of the first mode gets a flag ``--setting-name`` with its help line (when the recipe has one)
    and the modes' values; its type follows the modes' values (a list takes several), and ``options[setting]``
    adds or replaces ``add_argument`` keywords (``choices``, ``type``...), or sets a lower bound, ``at_least``,
    that :func:`parse_experiment_args` checks on the value (each value of a list) whatever set it.
    """
    script = Path(script)
    modes, descriptions, settings_help = read_modes(script.parent / "recipes" / f"{script.stem}.yaml")
    parser = Parser(prog=f"python experiments/{script.name}", description=doc,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_config_file_arguments(recipes=False)
    add_mode_arguments(parser, descriptions)
    first = next(iter(modes.values()))
    options = {key: dict(spec) for key, spec in (options or {}).items()}
    parser.bounds = {key: spec.pop("at_least") for key, spec in options.items() if "at_least" in spec}
    for key in first:
        values = [mode[key] for mode in modes.values()]
        shown = ", ".join(f"{mode}: {value}" for mode, value in zip(modes, values))
        about = settings_help.get(key)
        spec = dict(_argument_type(values), default=None, help=f"{about} ({shown})" if about else f"({shown})")
        spec.update(options.get(key, {}))
        parser.add_argument("--" + key.replace("_", "-"), **spec)
    name = name or script.stem.replace("_", "-")
    parser.add_argument("--output", help=f"output folder (default: runs/{name}-<mode>)")
    parser.add_argument("--threads", type=int, help="torch threads (1 on a shared machine)")
    add_report_to_argument(parser)
    parser.set_defaults(experiment_name=name)
    parser.modes, parser.axes, parser.shared = modes, tuple(axes), tuple(shared)
    return parser


def _argument_type(values: list) -> dict:
    """``type``/``nargs`` from a setting's values in every mode (the first one that is not None decides)."""
    known = [value for value in values if value is not None]
    if not known:
        return {}
    sample = known[0]
    if isinstance(sample, list):
        items = [item for value in known for item in value]
        return dict(nargs="+", type=type(items[0]) if items else str)
    if isinstance(sample, bool):
        return dict(type=lambda text: text.lower() in ("1", "true", "yes"))
    return dict(type=float if any(isinstance(value, float) for value in known) else type(sample))


def parse_experiment_args(parser: Parser, argv) -> ExperimentArgs:
    """Parse, fill the settings left unset from the chosen mode, default ``--output``, set torch's threads."""
    modes = parser.modes
    namespace = type("ExperimentArgs", (ExperimentArgs,), {"mode_settings": tuple(next(iter(modes.values()))),
                                                           "axes": getattr(parser, "axes", ()),
                                                           "shared": getattr(parser, "shared", ())})()
    args = apply_mode(parser.parse_args(argv, namespace), modes)
    for key, low in getattr(parser, "bounds", {}).items():
        value = getattr(args, key)
        if any(item < low for item in (value if isinstance(value, list) else [value]) if item is not None):
            parser.error(f"--{key.replace('_', '-')} must be at least {low:g}, got {value}")
    if args.output is None:
        args.output = str(Path("runs") / f"{args.experiment_name}-{args.mode}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    return args


def run_cells(args: ExperimentArgs, cells: Sequence[Mapping], run_cell: Callable[[dict, Path], dict], *,
              config: Mapping | None = None, log: Callable[[str], None] = print) -> list[dict] | None:
    """Every cell's record once all are done (``Sweep`` in ``args.output``: finished cells read back, a killed
    one resumed, ``config`` -- by default :meth:`ExperimentArgs.settings` -- checked against the folder's), or
    None on every process but the main one, which alone summarises; the main process then gets every core."""
    from .models import process_state
    from .sweeps import Sweep, use_every_core

    records = Sweep(args.output, cells, run_cell, config=args.settings() if config is None else config).run(log=log)
    if not process_state().is_main_process:
        return None
    use_every_core()  # the other processes are done: the summary's evaluation gets their cores too
    return records


def markdown_document(title: str, *sections: str) -> str:
    """``results.md``: the title as a heading, then each section that is not empty, a blank line apart."""
    return "\n\n".join([f"# {title}", *(section for section in sections if section)]) + "\n"


def write_results(output: str | Path, results: Mapping, markdown: str, *, printed: str,
                  plots: Mapping[str, Callable[[Path], Any]] | None = None) -> list[Path]:
    """The finish every experiment shares once its cells are done: ``results.json`` (atomically) and
    ``results.md`` in ``output``, each plot drawn into its file (file name -> a function of the path), then
    ``printed`` (its tables) on the terminal and one line naming what was written; returns those paths."""
    output = Path(output)
    write_json_atomic(output / "results.json", results)
    (output / "results.md").write_text(markdown)
    written = [output / "results.json", output / "results.md"]
    for name, draw in (plots or {}).items():
        draw(output / name)
        written.append(output / name)
    print(printed)
    print("written: " + ", ".join(map(str, written)))
    return written


def run_script(main: Callable[[], int]) -> None:
    """``sys.exit(main())`` with the package's warnings and user errors as one line each (see ``cli``)."""
    from .cli import run_reporting_errors

    sys.exit(run_reporting_errors(main))
