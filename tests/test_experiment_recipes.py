"""An experiment's modes as a recipe file: flags from its settings, the chosen mode filling what is unset, relative
paths read from the repository root, and the settings every cell shares; the finish the scripts share (cells run
once, results.md)."""

import os

import pytest

from rlprompt_interp.experiment import (experiment_parser, markdown_document, parse_experiment_args, read_modes,
                                        run_cells)

RECIPE = """\
# a comment, as the shipped recipes have
help:
  steps: training steps per cell
quick: &quick
  about: small
  steps: 2
  seeds: [0]
  lr: 0.001
  data_dir: ../shared/data
full:
  <<: *quick
  about: big
  steps: 200
  seeds: [0, 1, 2]
"""


@pytest.fixture
def script(tmp_path):
    (tmp_path / "repo" / "experiments" / "recipes").mkdir(parents=True)
    (tmp_path / "repo" / "experiments" / "recipes" / "toy_sweep.yaml").write_text(RECIPE)
    return tmp_path / "repo" / "experiments" / "toy_sweep.py"  # read as its __file__: it need not exist


def test_read_modes_splits_descriptions_help_and_settings(script, tmp_path):
    modes, descriptions, settings_help = read_modes(script.parent / "recipes" / "toy_sweep.yaml")
    assert descriptions == {"quick": "small", "full": "big"} and settings_help == {"steps": "training steps per cell"}
    shared = os.path.normpath(tmp_path / "shared" / "data")  # beside the repository, as ../shared is
    assert modes["quick"] == {"steps": 2, "seeds": [0], "lr": 0.001, "data_dir": shared}
    assert modes["full"] == {"steps": 200, "seeds": [0, 1, 2], "lr": 0.001, "data_dir": shared}  # the rest merged


def test_flags_override_the_chosen_mode_and_settings_leave_out_the_axes(script):
    parser = experiment_parser("doc", str(script))
    assert "training steps per cell (quick: 2, full: 200)" in " ".join(parser.format_help().split())
    args = parse_experiment_args(parser, ["--full", "--lr", "0.5", "--seeds", "3", "4"])
    assert (args.mode, args.steps, args.lr, args.seeds) == ("full", 200, 0.5, [3, 4])
    assert args.output == os.path.join("runs", "toy-sweep-full")
    assert args.settings("threads", leave_out=("seeds",)) == {"mode": "full", "steps": 200, "lr": 0.5,
                                                              "data_dir": args.data_dir, "threads": None}
    assert "mode_settings" not in vars(args)  # results.json records vars(args): values only
    assert parse_experiment_args(experiment_parser("doc", str(script), name="toy"), []).output.endswith("toy-quick")


def test_settings_default_to_the_parsers_axes_and_shared_flags(script):
    parser = experiment_parser("doc", str(script), axes=("seeds",), shared=("threads",))
    args = parse_experiment_args(parser, ["--seeds", "5", "--threads", "1"])
    assert args.settings() == {"mode": "quick", "steps": 2, "lr": 0.001, "data_dir": args.data_dir, "threads": 1}
    assert args.settings(leave_out=()) == {**args.settings(), "seeds": [5]}  # the defaults can still be overridden


def test_at_least_bounds_every_value_whether_flag_or_mode(script, capsys):
    parser = experiment_parser("doc", str(script), options={"seeds": dict(at_least=0), "steps": dict(at_least=3)})
    with pytest.raises(SystemExit):
        parse_experiment_args(parser, ["--steps", "5", "--seeds", "1", "-1"])  # one value of a list below
    assert "--seeds must be at least 0, got [1, -1]" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_experiment_args(parser, [])  # the quick mode's own 2 steps are below the bound too
    assert parse_experiment_args(parser, ["--full"]).steps == 200


def test_run_cells_runs_each_cell_once_and_refuses_other_settings(script, tmp_path):
    from rlprompt_interp.sweeps import SweepConfigError, grid

    args = parse_experiment_args(experiment_parser("doc", str(script), axes=("seeds",)),
                                 ["--output", str(tmp_path / "out")])
    ran = []

    def run_cell(cell, folder):
        ran.append(cell["seed"])
        return {"value": 10 * cell["seed"]}

    cells = grid(seed=[1, 2])
    assert [r["value"] for r in run_cells(args, cells, run_cell, log=lambda line: None)] == [10, 20]
    assert [r["value"] for r in run_cells(args, cells, run_cell, log=lambda line: None)] == [10, 20]
    assert ran == [1, 2]  # read back the second time
    args.lr = 0.5
    with pytest.raises(SweepConfigError, match="lr"):
        run_cells(args, cells, run_cell, log=lambda line: None)


def test_markdown_document_leaves_out_empty_sections():
    assert markdown_document("Title", "intro", "", "| a |") == "# Title\n\nintro\n\n| a |\n"
