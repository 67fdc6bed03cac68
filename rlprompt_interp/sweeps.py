"""Resumable experiment grids: one folder per cell, cells shared among processes.

An experiment script lists its cells (plain dicts of parameters, e.g. ``{"length": 5, "seed": 0}``)
and a function that runs one cell into its folder and returns a JSON-able record. :class:`Sweep`
runs the cells this process owns, writes each record atomically as ``result.json`` in the cell's
folder, and skips cells that already have one, so re-running a script only does what is missing.
A cell killed half-way leaves its training checkpoint behind; the cell function resumes it
(:func:`train_and_evaluate` does this for every agent).

Under ``accelerate launch`` (several GPUs or machines) process *i* of *n* runs cells *i, i+n, ...*;
all processes then wait for each other and read every record back, so any of them can summarise.

    sweep = Sweep("runs/sst2", cells=grid(length=[5, 15], seed=[0, 1]), run_cell=my_cell,
                  config={"steps": 100})
    records = sweep.run()
"""

from __future__ import annotations

import itertools
import json
import re
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .atomic import write_json_atomic
from .checkpoints import CHECKPOINT_FILE

RESULT_FILE = "result.json"
SWEEP_FILE = "sweep.json"


def add_mode_arguments(parser, descriptions: Mapping[str, str]) -> None:
    """``--quick`` / ``--full`` (or whatever modes ``descriptions`` names), the first one the default."""
    group = parser.add_mutually_exclusive_group()
    for name, description in descriptions.items():
        group.add_argument(f"--{name}", dest="mode", action="store_const", const=name, help=description)
    parser.set_defaults(mode=next(iter(descriptions)))


def apply_mode(args, modes: Mapping[str, Mapping[str, Any]]):
    """Fill every setting the command line left at None with the chosen mode's value."""
    for key, value in modes[args.mode].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    return args


class SweepConfigError(ValueError):
    """The output folder holds a sweep run with other settings."""


def grid(**axes: Sequence) -> list[dict]:
    """Every combination of the axes, in the order given: ``grid(a=[1, 2], b=["x"])``."""
    names = list(axes)
    return [dict(zip(names, values)) for values in itertools.product(*(axes[name] for name in names))]


def cell_name(cell: Mapping[str, Any]) -> str:
    """A folder name that reads as the cell: ``length=5,seed=0`` (unsafe characters replaced)."""
    parts = [f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}" for key, value in cell.items()]
    return re.sub(r"[^A-Za-z0-9_.,=+-]", "_", ",".join(parts))


class Sweep:
    """Runs ``run_cell(cell, folder) -> dict`` for each cell not finished yet; see the module docstring.

    ``config`` holds the settings every cell shares (mode, models, steps...). It is stored in the
    output folder, and resuming with different settings is refused rather than mixing runs.
    """

    def __init__(self, output_dir: str | Path, cells: Sequence[Mapping[str, Any]],
                 run_cell: Callable[[dict, Path], dict], *, config: Mapping[str, Any] | None = None):
        names = [cell_name(cell) for cell in cells]
        if len(set(names)) != len(names):
            raise ValueError("two cells of the sweep have the same parameters")
        self.output_dir = Path(output_dir)
        self.cells = [dict(cell) for cell in cells]
        self.run_cell = run_cell
        self.config = json.loads(json.dumps(dict(config or {}), default=str))  # as it reads back from disk

    def folder(self, cell: Mapping[str, Any]) -> Path:
        return self.output_dir / "cells" / cell_name(cell)

    def record(self, cell: Mapping[str, Any]) -> dict | None:
        """The finished cell's record, or None."""
        path = self.folder(cell) / RESULT_FILE
        return json.loads(path.read_text()) if path.is_file() else None

    def check_config(self) -> None:
        path = self.output_dir / SWEEP_FILE
        if path.is_file():
            stored = json.loads(path.read_text())
            changed = sorted(key for key in set(stored) | set(self.config) if stored.get(key) != self.config.get(key))
            if changed:
                details = ", ".join(f"{key}: {stored.get(key)!r} -> {self.config.get(key)!r}" for key in changed)
                raise SweepConfigError(
                    f"{self.output_dir} holds a sweep run with other settings ({details}); finished cells would "
                    f"mix with new ones. Use another --output, or the settings it was run with")

    def run(self, *, log: Callable[[str], None] = print, poll_seconds: float = 5.0) -> list[dict]:
        """Run this process's unfinished cells, wait for the other processes' ones, and return every
        cell's record."""
        from .models import process_state

        state = process_state()
        index, processes, main = state.process_index, state.num_processes, state.is_main_process
        self.check_config()
        if main:
            write_json_atomic(self.output_dir / SWEEP_FILE, self.config)
        mine = self.cells[index::processes]
        for number, cell in enumerate(mine, 1):
            folder = self.folder(cell)
            if self.record(cell) is not None:
                log(f"[{number}/{len(mine)}] {cell_name(cell)}: done, read back")
                continue
            resumed = " (resuming)" if any(folder.rglob(CHECKPOINT_FILE)) else ""
            log(f"[{number}/{len(mine)}] {cell_name(cell)}: running{resumed}")
            record = self.run_cell(dict(cell), folder)
            write_json_atomic(folder / RESULT_FILE, {"cell": cell, **record})
        return self.wait_for_records(poll_seconds if processes > 1 else 0.0)

    def wait_for_records(self, poll_seconds: float) -> list[dict]:
        """Every cell's record once all are written (``poll_seconds`` 0: as they are now, None where
        one is missing). A poll of the result files rather than a collective barrier: it has no
        timeout however unequal the processes' shares, and it holds when a cell resets accelerate's
        state (transformers' TrainingArguments does, so a barrier after a TRL cell waited for nobody).
        A launcher (torchrun, accelerate launch) stops every process when one fails."""
        while True:
            records = [self.record(cell) for cell in self.cells]
            if not poll_seconds or all(record is not None for record in records):
                return records
            time.sleep(poll_seconds)


def use_every_core() -> None:
    """On the main process of a multi-process CPU sweep once the other processes are done (they ran one
    thread each): give torch every core for the summary's evaluation."""
    import os

    import torch

    from .models import process_state

    if process_state().num_processes > 1:
        torch.set_num_threads(os.cpu_count() or 1)


def add_data_arguments(parser, default_data_dir: str | Path = "auto") -> None:
    """``--data-dir`` and ``--seed-split``: where :func:`task_and_models` reads the few-shot task."""
    parser.add_argument("--data-dir", default=str(default_data_dir),
                        help="RLPrompt's few-shot folder, or hub (the same K-shot split drawn from the hub); auto: "
                             "../shared/data/few-shot when it exists, else the hub")
    parser.add_argument("--seed-split", default="16-42", help="which few-shot split")


def task_and_models(args, task_name: str) -> tuple:
    """What every cell of an experiment shares: the task (from ``args.data_dir`` and ``args.seed_split``)
    and the frozen task LM and scorer (``args.task_model``, ``args.scorer``), returned as
    ``(task, {"task": lm, "scorer": lm})``. A masked task LM (RoBERTa) reads the task in RLPrompt's cloze
    template, with RLPrompt's verbalizers (``tasks.registry.rlprompt_cloze``)."""
    from .models import EVAL_DTYPE, load_lm
    from .tasks import get_task
    from .tasks.registry import rlprompt_cloze
    from .tasks.sources import few_shot_source

    source, where = few_shot_source(args.data_dir, args.seed_split)
    args.data_dir = source["data_dir"] or "hub"  # what the sweep's settings record
    print(f"data: {where}", flush=True)
    task = get_task(task_name, **source)
    # they score the reported figures: fp32, so a table does not depend on the CPU that computed it
    models = {"task": load_lm(args.task_model, role="task", dtype=EVAL_DTYPE),
              "scorer": load_lm(args.scorer, role="scorer", dtype=EVAL_DTYPE)}
    return (rlprompt_cloze(task) if models["task"].is_masked_lm else task), models


def train_cell(agent, task, folder: str | Path, *, prompt_length: int, steps: int, seed: int,
               report_to: str = "none", config: Mapping | None = None, tracker_hook=None):
    """Fit ``agent`` into ``folder/train`` (resuming a checkpoint left there) and return ``(learned, record)``:
    the learned prompt and a record of its text, ids, dev scores, the dev part of the training curve and
    the training time (the learned prompt with its full curve stays in ``folder/train``).
    ``report_to`` follows the training in a tracker (``tracking``), with ``config`` as its settings;
    ``tracker_hook(tracker, learned)`` may log more before the tracker closes."""
    from .models import compute_record
    from .tracking import track_run

    train_dir = Path(folder) / "train"
    started = time.time()
    with track_run(report_to, train_dir, config={**(config or {}), "prompt_length": prompt_length, "steps": steps,
                                                  "seed": seed, "computed_with": compute_record(agent.dtype)},
                   run_name=Path(folder).name) as tracker:
        agent.on_log = tracker.log_row
        learned = agent.fit(task, prompt_length=prompt_length, steps=steps, seed=seed, output_dir=train_dir,
                            resume=agent.has_checkpoint(train_dir))
        train_seconds = training_seconds(learned, time.time() - started)
        if tracker_hook is not None:
            tracker_hook(tracker, learned)
    dev_curve = [{k: v for k, v in row.items() if k == "step" or k.startswith("dev")}
                 for row in learned.curve or [] if any(k.startswith("dev") for k in row)]
    return learned, {"prompt": learned.text, "token_ids": learned.token_ids, "soft": learned.embeddings is not None,
                     "scores": learned.scores, "dev_curve": dev_curve, "train_seconds": train_seconds,
                     "learned_prompt": str(train_dir), "train_computed_with": learned.provenance.get("computed_with")}


def training_seconds(learned, this_call: float) -> float:
    """A run's training time: the cumulative ``time`` its curve records over every process that resumed it
    (the SQL and TRL trainers keep one), else ``this_call``, the seconds of the call that finished it."""
    last = (learned.curve or [{}])[-1]
    return float(last["time"]) if "time" in last else this_call


def test_record(report, split: str = "test") -> dict:
    """What a record keeps of a prompt's evaluation: accuracy (and over classes alike), which examples it got right (``<split>_correct``,
    a string of 0/1 in split order, so ``sweep_report`` can compare prompts sentence by sentence), how many
    examples, the predicted label fractions and how it was computed."""
    return {f"{split}_accuracy": report.accuracy, f"{split}_balanced_accuracy": report.balanced_accuracy,
            f"{split}_correct": "".join(map(str, report.correct)),
            "eval_examples": report.num_examples, "predicted_fraction": report.predicted_fraction,
            "eval_computed_with": report.computed_with}


def train_and_evaluate(agent, task, folder: str | Path, *, prompt_length: int, steps: int, seed: int, eval_lm,
                       scorer=None, eval_split: str = "test", eval_limit: int | None = None,
                       eval_batch_size: int = 32, report_to: str = "none", config: Mapping | None = None) -> dict:
    """:func:`train_cell`, then score the learned prompt on ``eval_split`` with ``eval_lm`` (:func:`test_record`)
    and its text's perplexity under ``scorer``."""
    from .evaluation import evaluate_prompt
    from .perplexity import prompt_perplexity

    reports = []

    def evaluate(tracker, learned):
        started = time.time()
        reports.append(evaluate_prompt(task, eval_lm, learned, split=eval_split, limit=eval_limit,
                                       batch_size=eval_batch_size, progress=False))
        tracker.log({f"{eval_split}/accuracy": reports[0].accuracy}, step=steps)
        reports.append(time.time() - started)

    learned, record = train_cell(agent, task, folder, prompt_length=prompt_length, steps=steps, seed=seed,
                                 report_to=report_to, config=config, tracker_hook=evaluate)
    return {**record, **test_record(reports[0], eval_split),
            "prompt_perplexity": prompt_perplexity(scorer, learned.text), "eval_seconds": reports[1]}


def score_prompts(task, lm, scorer, prompts: Mapping[str, Any], path: str | Path, *, split: str = "test",
                  limit: int | None = None, progress: bool = True, log: Callable[[str], None] = print) -> dict:
    """Every prompt of ``prompts`` (key -> text or ``LearnedPrompt``) scored on ``split`` by ``lm`` in one shared
    pass (``evaluation.evaluate_prompts``: each example is encoded once for all the discrete prompts), with its
    perplexity under ``scorer``; kept by key in the JSON file ``path``, so a second call scores only new keys.
    Returns key -> :func:`test_record` plus ``text``, ``prompt_perplexity`` and ``eval_seconds_shared``."""
    from .evaluation import evaluate_prompts
    from .perplexity import prompt_perplexity

    path = Path(path)
    scores = json.loads(path.read_text()) if path.is_file() else {}
    missing = [key for key in prompts if key not in scores]
    if missing:
        started = time.time()
        reports = evaluate_prompts(task, lm, [prompts[key] for key in missing], split=split, limit=limit,
                                   progress=progress)
        seconds = time.time() - started
        for key, report in zip(missing, reports):
            text = getattr(prompts[key], "text", prompts[key])
            scores[key] = {"text": text, **test_record(report, split),
                           "prompt_perplexity": prompt_perplexity(scorer, text), "eval_seconds_shared": seconds}
        write_json_atomic(path, scores)
        log(f"scored {len(missing)} prompts on the {split} split in {seconds:.0f} s")
    return scores
