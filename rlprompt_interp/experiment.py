"""What every experiment script shares: its command line, its finish and its entry point.

A script declares its modes (``{"quick": {setting: value}, "full": {...}}``, the first the default)
and a help line per setting. :func:`experiment_parser` gives the parser each script starts from:
``--quick``/``--full``, a flag per mode setting (left unset, it takes the chosen mode's value),
``--config FILE`` (YAML or JSON, flags overriding it), ``--output``, ``--threads`` and
``--report-to``. :func:`parse_experiment_args` applies the mode, the default output folder and the
thread count; :func:`write_results` writes and prints the results once the cells are done;
:func:`run_script` runs ``main`` with the package's one-line user errors.

    parser = experiment_parser(__doc__, "sst2-ppl-sweep", MODES, {"quick": "CPU", "full": "the paper"}, HELP)
    args = parse_experiment_args(parser, argv, MODES)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

from .atomic import write_json_atomic
from .cli.common import Parser
from .sweeps import add_mode_arguments, apply_mode
from .tracking import add_report_to_argument


def experiment_parser(doc: str, name: str, modes: Mapping[str, Mapping[str, Any]], descriptions: Mapping[str, str],
                      settings_help: Mapping[str, str] | None = None, *, options: Mapping[str, Mapping] | None = None) -> Parser:
    """The parser of experiment ``name`` (its output folder defaults to ``runs/<name>-<mode>``).

    Each setting of the first mode gets a flag ``--setting-name`` with ``settings_help[setting]`` (when given) and the
    modes' values in its help; its type follows the modes' values (a list takes several), and
    ``options[setting]`` adds or replaces ``add_argument`` keywords (``choices``, ``type``...).
    """
    script = f"experiments/{name.replace('-', '_')}.py"  # the file, as a user runs it (usage and error lines)
    parser = Parser(prog=f"python {script}", description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_config_file_arguments(recipes=False)
    add_mode_arguments(parser, descriptions)
    first = next(iter(modes.values()))
    for key in first:
        values = [mode[key] for mode in modes.values()]
        shown = ", ".join(f"{mode}: {value}" for mode, value in zip(modes, values))
        about = (settings_help or {}).get(key)
        spec = dict(_argument_type(values), default=None, help=f"{about} ({shown})" if about else f"({shown})")
        spec.update((options or {}).get(key, {}))
        parser.add_argument("--" + key.replace("_", "-"), **spec)
    parser.add_argument("--output", help=f"output folder (default: runs/{name}-<mode>)")
    parser.add_argument("--threads", type=int, help="torch threads (1 on a shared machine)")
    add_report_to_argument(parser)
    parser.set_defaults(experiment_name=name)
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


def parse_experiment_args(parser: Parser, argv, modes: Mapping[str, Mapping[str, Any]]) -> argparse.Namespace:
    """Parse, fill the settings left unset from the chosen mode, default ``--output``, set torch's threads."""
    args = apply_mode(parser.parse_args(argv), modes)
    if args.output is None:
        args.output = str(Path("runs") / f"{args.experiment_name}-{args.mode}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    return args


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
