"""An experiment's modes as a recipe file: flags from its settings, the chosen mode filling what is unset, relative
paths read from the repository root, and the settings every cell shares."""

import os

import pytest

from rlprompt_interp.experiment import experiment_parser, parse_experiment_args, read_modes

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
