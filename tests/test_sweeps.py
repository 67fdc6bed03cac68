"""The sweep machinery: grids, resumable cells, refused setting changes, summaries, Pareto fronts."""

import json
import math

import pytest

from rlprompt_interp.sweep_report import format_number, markdown_table, mean_std, pareto_front, summarize
from rlprompt_interp.sweeps import RESULT_FILE, Sweep, SweepConfigError, cell_name, grid


def test_grid_is_the_cartesian_product_in_order():
    assert grid(length=[5, 15], seed=[0, 1]) == [
        {"length": 5, "seed": 0}, {"length": 5, "seed": 1}, {"length": 15, "seed": 0}, {"length": 15, "seed": 1}]


def test_cell_name_reads_as_the_cell_and_is_a_safe_folder_name():
    assert cell_name({"ppl_coef": 0.01, "length": 5, "target": "a b/c"}) == "ppl_coef=0.01,length=5,target=a_b_c"


def test_sweep_runs_each_cell_once_and_reads_finished_ones_back(tmp_path):
    calls = []

    def run_cell(cell, folder):
        calls.append(cell["x"])
        return {"square": cell["x"] ** 2}

    cells = grid(x=[1, 2, 3])
    records = Sweep(tmp_path, cells, run_cell, config={"steps": 2}).run(log=lambda _: None)
    assert [r["square"] for r in records] == [1, 4, 9] and calls == [1, 2, 3]
    assert records[0]["cell"] == {"x": 1}

    (tmp_path / "cells" / "x=2" / RESULT_FILE).unlink()  # as if the cell had been killed
    records = Sweep(tmp_path, cells, run_cell, config={"steps": 2}).run(log=lambda _: None)
    assert calls == [1, 2, 3, 2] and [r["square"] for r in records] == [1, 4, 9]


def test_sweep_refuses_to_resume_with_other_settings(tmp_path):
    Sweep(tmp_path, grid(x=[1]), lambda cell, folder: {}, config={"steps": 2}).run(log=lambda _: None)
    with pytest.raises(SweepConfigError, match=r"steps: 2 -> 3"):
        Sweep(tmp_path, grid(x=[1]), lambda cell, folder: {}, config={"steps": 3}).run(log=lambda _: None)


def test_a_failing_cell_leaves_no_result_behind(tmp_path):
    def run_cell(cell, folder):
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError):
        Sweep(tmp_path, grid(x=[1]), run_cell).run(log=lambda _: None)
    assert not (tmp_path / "cells" / "x=1" / RESULT_FILE).exists()
    assert json.loads((tmp_path / "sweep.json").read_text()) == {}


def test_summary_mean_and_sample_std_over_seeds():
    records = [{"cell": {"L": 5, "seed": s}, "acc": a} for s, a in enumerate([0.5, 0.7, 0.9])]
    records.append({"cell": {"L": 15, "seed": 0}, "acc": 0.6})
    rows = summarize(records, by=["L"], metrics=["acc"])
    assert rows[0]["L"] == 5 and rows[0]["n"] == 3
    assert rows[0]["acc_mean"] == pytest.approx(0.7) and rows[0]["acc_std"] == pytest.approx(0.2)  # sqrt(0.08/2)
    assert rows[1]["acc_mean"] == 0.6 and rows[1]["acc_std"] == 0.0
    assert math.isnan(mean_std([None])[0])


def test_pareto_front_maximises_accuracy_and_minimises_perplexity():
    # (perplexity, accuracy): (20, 0.7) is beaten by (10, 0.8); (10, 0.6) by (10, 0.8)
    points = [(10, 0.8), (20, 0.7), (5, 0.55), (100, 0.9), (10, 0.6)]
    assert pareto_front(points) == [0, 2, 3]


def test_markdown_table_escapes_pipes_and_formats_numbers():
    table = markdown_table([{"p": "a|b", "v": 3.14159e7}], [("prompt", lambda r: r["p"]),
                                                               ("ppl", lambda r: format_number(r["v"]))])
    assert table.splitlines() == ["| prompt | ppl |", "|---|---|", "| a\\|b | 3.14e+07 |"]


def test_cells_are_shared_between_processes_under_torchrun(tmp_path):
    """Two CPU processes: each runs half of the cells, both read all records back."""
    import subprocess
    import sys

    script = tmp_path / "sweep_script.py"
    # Rank 1's cells take longer, and rank 0's reset accelerate's state as transformers' TrainingArguments does (a
    # TRL agent's cell): rank 0 must still wait for rank 1's records.
    script.write_text(
        "import json, os, sys, time\n"
        "from accelerate.state import AcceleratorState\n"
        "from rlprompt_interp.sweeps import Sweep, grid\n"
        "def run_cell(cell, folder):\n"
        "    rank = int(os.environ['RANK'])\n"
        "    if rank == 0:\n"
        "        AcceleratorState._reset_state(reset_partial_state=True)\n"
        "    else:\n"
        "        time.sleep(2)\n"
        "    return {'rank': rank}\n"
        "records = Sweep(sys.argv[1], grid(x=[0, 1, 2, 3]), run_cell).run(log=lambda _: None, poll_seconds=0.2)\n"
        "seen = [r['rank'] for r in records]\n"
        "with open(os.path.join(sys.argv[2], 'seen-' + os.environ['RANK'] + '.json'), 'w') as f:\n"
        "    json.dump(seen, f)\n")
    # Each process reports through its own file: two processes printing to one pipe can interleave.
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                             str(script), str(tmp_path / "out"), str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    for rank in (0, 1):  # process i ran cells i, i+2, and both read all four records back
        assert json.loads((tmp_path / f"seen-{rank}.json").read_text()) == [0, 1, 0, 1]
