"""Soft prompts across SuperGLUE tasks, and what they say (Interpreting Prompt-Tuning Across SuperGLUE Tasks).

Reproduces the analyses of Dayton, O'Rahilly & Werner: soft prompts tuned on CB, RTE, COPA and WSC
with a frozen bloomz-560m, each initialised from a hand-written task prompt (the paper's §5.1 texts,
placed at the end of the prompt) and stopped early (patience 5: the paper watched the eval loss, the
soft-prompt agent watches dev accuracy), several seeds per task. All prompts have one length, so they
can be compared and moved between tasks; every run of a task starts from the same prompt. Then:

* nearest-token readout: the 3 vocabulary tokens closest (cosine) to each prompt position
  (the paper's Figures 2-5), with the init-text token each position started from;
* stochasticity: mean and variance of the prompt norms ``‖P‖_F`` per task (Table 1) and a 2-D map
  of the prompts (Figure 6; PCA here, where the paper used t-SNE);
* similarity ``‖P_i − P_j‖_F`` between prompts (Figure 7), the zero-shot transfer matrix
  ``acc_j(P_i) − acc_j(no prompt)`` (Figure 8), and the correlation of the two.

    python experiments/superglue_prompt_analysis.py --quick   # embedded SmolLM2-135M, FewGLUE, CPU, ~20 min
    python experiments/superglue_prompt_analysis.py --full    # bloomz-560m, SuperGLUE from the hub, 4 seeds
    accelerate launch experiments/superglue_prompt_analysis.py --full   # cells spread over processes
    python experiments/superglue_prompt_analysis.py --quick --analyse-only   # tables again, no training

Writes to ``--output``: ``results.json`` (settings, every cell's record with its readout, the
no-prompt baselines, transfer accuracies, matrices, norm statistics, correlations), ``results.md``
(the tables) and ``prompt_map.png``, ``similarity.png``, ``similarity_prompts.png``,
``transfer.png``. One cell per task × seed trains in its own folder under ``cells/``; running the
script again skips finished cells and resumes a killed one from its checkpoint. The transfer
accuracies and the no-prompt baselines are kept in ``transfer.json``, so ``--analyse-only``
rebuilds every table and plot from the finished folder without loading a model.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from rlprompt_interp.agents.soft_prompt import SoftPromptAgent
from rlprompt_interp.experiment import (experiment_parser, markdown_document, parse_experiment_args, run_cells,
                                        run_script, write_results)
from rlprompt_interp.models import DTYPE_CHOICES
from rlprompt_interp.sweep_report import column, format_number, markdown_table
from rlprompt_interp.sweeps import SWEEP_FILE, cell_name, grid, train_and_evaluate, write_json_atomic

# The paper's hand-written initial prompts (§5.1), verbatim.
PAPER_INIT_TEXTS = {
    "cb": "Does the hypothesis entail, contradict or is neutral about the premise?",
    "rte": "Does the hypothesis entail, or not entail the premise?",
    "copa": "Pick the correct choice given the premise and the question.",
    "wsc": "Given the following text, decide whether the span1_text is referenced by the pronoun in span2_text",
}
# Table 1 of the paper (bloomz-560m, hidden size 1024): average norm and variance of the learned prompts per task.
PAPER_NORMS = {"cb": (119.2, 1.31), "rte": (107.7, 3.5), "copa": (111.2, 38.5), "wsc": (135.3, 3.8)}
TRANSFER_FILE = "transfer.json"
# Every cell of a task starts from one prompt, as in the paper ("the same initial conditions"): the random
# positions before the init text come from this seed, not the cell's, so seeds differ only in batch order.
FILL_SEED = 0


class ExperimentError(ValueError):
    """Settings or an output folder this experiment cannot work with; the message names the fix."""


def init_text_option(text: str) -> tuple[str, str]:
    """``"rte=Is it true?"`` -> ("rte", "Is it true?")."""
    task, sep, value = text.partition("=")
    if not sep or not task or not value.strip():
        raise argparse.ArgumentTypeError(f"expected TASK=TEXT such as 'rte=Does the premise entail it?'; got {text!r}")
    return task.strip(), value


def parse_args(argv=None) -> argparse.Namespace:
    # everything the cells share (seeds may be added later); resuming with other values is refused
    parser = experiment_parser(__doc__, __file__, options={key: dict(type=int) for key in ("dev_limit", "eval_limit")},
                               axes=("seeds",), shared=("lr", "init_texts", "transfer_split", "top_k", "dtype"))
    parser.add_argument("--lr", type=float, help="learning rate (default: the soft-prompt agent's own, 0.1 × the "
                                                 "standard deviation of the vocabulary embeddings)")
    parser.add_argument("--init-text", type=init_text_option, action="append", default=[], metavar="TASK=TEXT",
                        help="initial prompt text of a task (default: the paper's); may be repeated")
    parser.add_argument("--transfer-split", default="test", choices=["dev", "test"],
                        help="split on which every prompt is scored on every task")
    parser.add_argument("--top-k", type=int, default=3, help="nearest tokens shown per prompt position")
    parser.add_argument("--eval-batch-size", type=int, default=8)
    parser.add_argument("--dtype", default="auto", choices=DTYPE_CHOICES, help="task LM dtype")
    parser.add_argument("--analyse-only", action="store_true",
                        help="rebuild results.json/.md and the plots from a finished --output folder, no model")
    args = parse_experiment_args(parser, argv)
    if len(set(args.tasks)) != len(args.tasks) or len(set(args.seeds)) != len(args.seeds):
        parser.error("--tasks and --seeds must not repeat values")
    args.init_texts = {task: PAPER_INIT_TEXTS.get(task) for task in args.tasks}
    for task, text in args.init_text:
        if task not in args.tasks:
            parser.error(f"--init-text names task {task!r}, which is not among --tasks {args.tasks}")
        args.init_texts[task] = text
    missing = [task for task, text in args.init_texts.items() if not text]
    if missing:
        parser.error(f"no initial prompt text for {missing}: pass --init-text {missing[0]}=TEXT")
    return args


def load_tasks(names: list[str], data_dir: str) -> dict:
    from rlprompt_interp.tasks import get_task

    return {name: get_task(name, data_dir=None if data_dir == "hub" else data_dir) for name in names}


def check_init_texts(args, lm) -> dict[str, list[int]]:
    """Each task's init-text token ids; refuses a text longer than the prompt before any training starts."""
    from rlprompt_interp.agents.continuous import text_ids

    ids = {task: text_ids(lm, text) for task, text in args.init_texts.items()}
    too_long = {task: len(token_ids) for task, token_ids in ids.items() if len(token_ids) > args.prompt_length}
    if too_long:
        raise ExperimentError(
            f"init texts longer than --prompt-length {args.prompt_length} under {lm.spec}'s tokenizer: {too_long} "
            "tokens; raise --prompt-length or pass a shorter --init-text TASK=TEXT")
    return ids


def make_cell_runner(args, tasks: dict, lm, init_ids: dict):
    from rlprompt_interp.metrics.report import nearest_tokens
    from rlprompt_interp.prompts import LearnedPrompt

    def run_cell(cell: dict, folder: Path) -> dict:
        name = cell["task"]
        agent = SoftPromptAgent(model=args.model, dtype=args.dtype, lr=args.lr, batch_size=args.batch_size,
                                eval_every=args.eval_every, eval_batch_size=args.eval_batch_size,
                                dev_limit=args.dev_limit, patience=args.patience, init="text",
                                init_text=args.init_texts[name], init_seed=FILL_SEED, quiet=True)
        record = train_and_evaluate(agent, tasks[name], folder, prompt_length=args.prompt_length, steps=args.steps,
                                    seed=cell["seed"], eval_lm=lm, eval_split=args.transfer_split,
                                    eval_limit=args.eval_limit, eval_batch_size=args.eval_batch_size,
                                    report_to=args.report_to, config={**args.settings(), **cell})
        learned = LearnedPrompt.load(folder / "train")
        # the init text sits at the end of the prompt; earlier positions started as random common tokens
        offset = args.prompt_length - len(init_ids[name])
        readout = nearest_tokens(learned.embeddings, lm, metric="cosine", top_k=args.top_k)
        for row in readout:
            start = init_ids[name][row["position"] - offset] if row["position"] >= offset else None
            row["init_token"] = lm.tokenizer.decode([start]) if start is not None else None
            row["kept_init_token"] = start is not None and row["token_ids"][0] == start
        record.update(readout=readout, init_text=args.init_texts[name],
                      prompt_norm=float(learned.embeddings.double().norm()),
                      kept_init_tokens=sum(row["kept_init_token"] for row in readout),
                      init_text_tokens=len(init_ids[name]))
        print(f"    {name} seed {cell['seed']}: {args.transfer_split} accuracy "
              f"{record[f'{args.transfer_split}_accuracy']:.4f}, best dev {record['scores']['dev_accuracy']:.4f} "
              f"at step {record['scores']['best_step']}, ‖P‖_F {record['prompt_norm']:.2f}", flush=True)
        return record

    return run_cell


def prompt_label(record: dict) -> str:
    return f"{record['cell']['task']} s{record['cell']['seed']}"


def prompt_folder(output: Path, record: dict) -> Path:
    """Where the cell's learned prompt lies, found from the output folder (which may have moved)."""
    return output / "cells" / cell_name(record["cell"]) / "train"


def transfer_accuracies(output: Path, records: list[dict], config: dict, tasks: dict | None, lm, *,
                        batch_size: int = 8) -> dict:
    """Every prompt on every task and the no-prompt baselines (``evaluate_transfer``), kept in ``transfer.json``.

    Read back when the file was written for the same prompts, tasks, split and model; computing
    it needs ``tasks`` and ``lm``.
    """
    from rlprompt_interp.metrics import evaluate_transfer
    from rlprompt_interp.prompts import LearnedPrompt

    key = {"prompts": [prompt_label(r) for r in records], "fingerprints": [fingerprint(output, r) for r in records],
           "tasks": config["tasks"], "split": config["transfer_split"], "limit": config["eval_limit"],
           "model": config["model"]}
    path = output / TRANSFER_FILE
    if path.is_file():
        stored = json.loads(path.read_text())
        if stored.get("key") == key:
            return stored
    if lm is None:
        raise ExperimentError(f"{path} is missing or was written for other prompts; run the script without "
                              "--analyse-only to score the prompts on every task")
    prompts = {prompt_label(r): LearnedPrompt.load(prompt_folder(output, r)) for r in records}
    print(f"scoring {len(prompts)} prompts and no prompt on {len(tasks)} tasks ({config['transfer_split']} split)",
          flush=True)
    result = evaluate_transfer(prompts, tasks, lm, split=config["transfer_split"], limit=config["eval_limit"],
                               batch_size=batch_size)
    result["label_counts"] = {}
    for name, task in tasks.items():
        labels = task.load_split(config["transfer_split"], limit=config["eval_limit"])["label"]
        result["label_counts"][name] = {label: labels.count(k) for k, label in enumerate(task.label_names)}
    result["examples"] = {name: sum(counts.values()) for name, counts in result["label_counts"].items()}
    result["key"] = key
    write_json_atomic(path, result)
    return result


def fingerprint(output: Path, record: dict) -> str:
    """A hash of the learned prompt's embeddings file: transfer accuracies are reused only for the same prompts."""
    import hashlib

    from rlprompt_interp.prompts import EMBEDDINGS_FILE

    return hashlib.sha256((prompt_folder(output, record) / EMBEDDINGS_FILE).read_bytes()).hexdigest()[:16]


def distance_to_tasks(similarity, groups: list[str], tasks: list[str]):
    """``[n, len(tasks)]``: mean ``‖P_p − P_q‖_F`` from prompt p to the other prompts q ≠ p learned on each task
    (NaN where there is none, e.g. p's own task with one seed)."""
    out = torch.full((len(groups), len(tasks)), float("nan"), dtype=torch.float64)
    for p in range(len(groups)):
        for j, task in enumerate(tasks):
            values = [float(similarity[p, q]) for q, g in enumerate(groups) if g == task and q != p]
            if values:
                out[p, j] = sum(values) / len(values)
    return out


def task_rows(per_prompt, groups: list[str], tasks: list[str]):
    """``[len(tasks), columns]``: the per-prompt rows averaged over the seeds of each task (NaNs left out)."""
    rows = []
    for task in tasks:
        block = per_prompt[[p for p, g in enumerate(groups) if g == task]]
        present = ~block.isnan()
        rows.append(torch.where(present, block, 0).sum(0) / present.sum(0))  # 0/0 = NaN where nothing is present
    return torch.stack(rows)


def analyse(output: Path, records: list[dict], transfer: dict, config: dict) -> dict:
    """Norm statistics, similarity and transfer matrices, their correlations and the 2-D map; no model needed.

    Task-level matrices average the prompt-level ones over seeds: ``S[i, j]`` is the mean distance
    from a prompt of task i to the other prompts of task j (the diagonal: between seeds of one
    task), ``T[i, j]`` the mean accuracy change of task i's prompts on task j.
    """
    from rlprompt_interp.metrics import matrix_correlation, pca_2d, similarity_matrix, stochasticity, transfer_matrix
    from rlprompt_interp.prompts import LearnedPrompt

    tasks = config["tasks"]
    labels = [prompt_label(r) for r in records]
    groups = [r["cell"]["task"] for r in records]
    if transfer["prompts"] != labels or transfer["tasks"] != tasks:
        raise ExperimentError(f"{output / TRANSFER_FILE} holds other prompts or tasks than the finished cells")
    prompts = [LearnedPrompt.load(prompt_folder(output, r)).embeddings for r in records]  # each [L, d]
    similarity = similarity_matrix(prompts)  # [n, n] ‖P_p − P_q‖_F
    distance = distance_to_tasks(similarity, groups, tasks)  # [n, tasks]
    delta = transfer_matrix(torch.tensor(transfer["accuracy"]), torch.tensor(transfer["baseline"]))  # [n, tasks]
    task_similarity, task_delta = task_rows(distance, groups, tasks), task_rows(delta, groups, tasks)
    return {
        "labels": labels, "tasks": tasks,
        "stochasticity": stochasticity(prompts, groups),
        "similarity_prompts": similarity.tolist(), "similarity_tasks": task_similarity.tolist(),
        "distance_to_tasks": distance.tolist(), "transfer_prompts": delta.tolist(), "transfer_tasks": task_delta.tolist(),
        "correlation": {
            "tasks_off_diagonal": matrix_correlation(task_similarity, task_delta),
            "tasks_with_diagonal": matrix_correlation(task_similarity, task_delta, include_diagonal=True),
            "prompts": matrix_correlation(distance, delta, include_diagonal=True)},
        "map_2d": pca_2d(prompts).tolist(),
    }


# --------------------------------------------------------------------------- report


def matrix_table(row_labels: list[str], column_labels: list[str], matrix, fmt, corner: str = "") -> str:
    rows = [{"label": label, "values": values} for label, values in zip(row_labels, matrix)]
    columns = [(corner, lambda r: r["label"])]
    columns += [(name, lambda r, j=j: "-" if math.isnan(r["values"][j]) else fmt(r["values"][j]))
                for j, name in enumerate(column_labels)]
    return markdown_table(rows, columns)


def readout_tables(records: list[dict], tasks: list[str]) -> str:
    """Per task: each position's init token, then each seed's nearest tokens (cosine), best first."""
    def cell(row):
        mark = " (kept)" if row["kept_init_token"] else ""
        return ", ".join(f"{token!r} {score:.2f}" for token, score in zip(row["tokens"], row["scores"])) + mark

    parts = []
    for task in tasks:
        members = [r for r in records if r["cell"]["task"] == task]
        if not members:
            continue
        rows = [{"position": i, "init": members[0]["readout"][i]["init_token"], "seeds": [m["readout"][i] for m in members]}
                for i in range(len(members[0]["readout"]))]
        columns = [("pos", lambda r: r["position"]),
                   ("init token", lambda r: "(random)" if r["init"] is None else repr(r["init"]))]
        columns += [(f"seed {m['cell']['seed']}: nearest tokens (cosine)", lambda r, k=k: cell(r["seeds"][k]))
                    for k, m in enumerate(members)]
        parts.append(f"**{task}** (init text {members[0]['init_text']!r})\n\n" + markdown_table(rows, columns))
    return "\n\n".join(parts)


def write_report(output: Path, records: list[dict], transfer: dict, config: dict) -> dict:
    """results.json, results.md and the plots from finished records and transfer accuracies; returns the analysis."""
    from rlprompt_interp.metrics.similarity import plot_matrix, plot_prompt_map

    analysis = analyse(output, records, transfer, config)
    tasks, labels, split = config["tasks"], analysis["labels"], config["transfer_split"]
    baseline = dict(zip(tasks, transfer["baseline"]))
    examples = transfer.get("examples", {})

    prompts_table = markdown_table([{**record, **record["scores"]} for record in records], [
        ("prompt", prompt_label), column("steps_run", "steps run"), column("best_step", "best step"),
        column("stopped_early", "stopped early", lambda stopped: "yes" if stopped else "no"),
        ("dev acc start → best", lambda r: f"{r['initial_dev_accuracy']:.3f} → {r['dev_accuracy']:.3f}"),
        column(f"{split}_accuracy", f"{split} acc", "{:.3f}".format),
        (f"{split} acc, no prompt", lambda r: f"{baseline[r['cell']['task']]:.3f}"),
        column("prompt_norm", "‖P‖_F", "{:.2f}".format),
        ("init tokens kept (top-1)", lambda r: f"{r['kept_init_tokens']}/{r['init_text_tokens']}"),
        ("top-1 tokens (cosine)", lambda r: repr("".join(row["tokens"][0] for row in r["readout"]))),
    ])
    stoch = analysis["stochasticity"]
    norms_table = markdown_table([dict(task=t, **stoch[t]) for t in tasks if t in stoch], [
        column("task"), column("n", "prompts"), column("mean_norm", "mean ‖P‖_F", "{:.2f}".format),
        column("variance", fmt=format_number),
        column("mean_pairwise_distance", "mean ‖P_i − P_j‖_F between seeds", "{:.3f}".format),
        ("paper mean (bloomz-560m)", lambda r: PAPER_NORMS[r["task"]][0] if r["task"] in PAPER_NORMS else "-"),
        ("paper variance", lambda r: PAPER_NORMS[r["task"]][1] if r["task"] in PAPER_NORMS else "-")])
    accuracy_rows = [*labels, "no prompt"]
    accuracy = [*transfer["accuracy"], transfer["baseline"]]
    corr = analysis["correlation"]

    def correlation_line(name, c):
        return f"- {name}: Pearson {format_number(c['pearson'])}, Spearman {format_number(c['spearman'])} (n = {c['n']})"

    offline = config["data_dir"] != "hub"
    notes = [f"Task LM {config['model']}; soft prompts of {config['prompt_length']} positions, the init text at the "
             "end and random common-token embeddings before it (the same random tokens for every prompt: seeds "
             f"differ only in the order of training batches); {config['steps']} steps at most, batch "
             f"{config['batch_size']}, dev accuracy every {config['eval_every']} steps, patience {config['patience']} "
             f"evaluations; learning rate {config['lr'] if config['lr'] is not None else 'the agent default'}."]
    sizes = ", ".join(f"{t} {examples[t]}" for t in tasks if t in examples)
    if offline:
        notes.append(f"Data: FewGLUE ({config['data_dir']}), whose 32 labelled examples per task are split 16 train / "
                     f"8 dev / 8 test (fixed shuffle). **The {split} accuracies here are on {sizes} examples: one "
                     "example is 0.125 of accuracy, so differences below that are noise and the matrices are coarse.**")
    else:
        notes.append(f"Data: SuperGLUE from the hub (validation split as test); {split} examples: {sizes}.")
    for task, counts in transfer.get("label_counts", {}).items():
        present = [label for label, count in counts.items() if count]
        if len(present) == 1:
            notes.append(f"Every {split} example of {task} is labelled {present[0]!r} (FewGLUE's WSC, for one, has "
                         "only true examples): its accuracy only says whether that class's verbalizer wins.")
    unchanged = [prompt_label(r) for r in records if r["scores"]["best_step"] == 0]
    if unchanged:
        notes.append(f"{', '.join(unchanged)}: no later dev evaluation beat step 0, so these learned prompts are their "
                     "initial prompt (and the seeds of a task that all stop there are one and the same prompt).")
    notes.append("The 2-D map is PCA of the flattened prompts (the paper used t-SNE). Norms depend on the model's "
                 "embedding scale: the paper's Table 1 (bloomz-560m, d = 1024) compares with these only in shape.")
    notes.append("The paper's Figure 8 reads +0.4 for the CB prompt on COPA over no prompt; its other matrix "
                 "entries are given only as a figure.")

    markdown = markdown_document(
        f"Soft prompts across SuperGLUE tasks ({config['mode']} mode)",
        "\n".join(f"- {note}" for note in notes),
        "## Learned prompts\n\n" + prompts_table,
        "## Nearest-token readout (the paper's Figures 2-5)\n\n"
        "Top tokens by cosine similarity per position; '(kept)' marks a position whose nearest token is still the "
        "init-text token it started from.\n\n" + readout_tables(records, tasks),
        "## Stochasticity: prompt norms per task (the paper's Table 1)\n\n" + norms_table,
        "## Similarity ‖P_i − P_j‖_F (the paper's Figure 7)\n\nTask level: mean distance from a prompt of the row "
        "task to the other prompts of the column task (diagonal: between seeds).\n\n"
        + matrix_table(tasks, tasks, analysis["similarity_tasks"], lambda v: f"{v:.3f}", "prompt of ↓ / prompts of →")
        + "\n\nEvery prompt:\n\n" + matrix_table(labels, labels, analysis["similarity_prompts"], lambda v: f"{v:.3f}"),
        f"## Zero-shot transfer (the paper's Figure 8)\n\n{split} accuracy of every prompt on every task:\n\n"
        + matrix_table(accuracy_rows, tasks, accuracy, lambda v: f"{v:.3f}", "prompt ↓ / task →")
        + "\n\nAccuracy change against no prompt, averaged over the seeds of the row task:\n\n"
        + matrix_table(tasks, tasks, analysis["transfer_tasks"], lambda v: f"{v:+.3f}", "prompt of ↓ / task →"),
        "## Correlation of similarity and transfer\n\nA negative correlation means that closer prompts transfer "
        "better (the paper's claim).\n\n" + "\n".join([
            correlation_line("task level, off the diagonal", corr["tasks_off_diagonal"]),
            correlation_line("task level, with the diagonal", corr["tasks_with_diagonal"]),
            correlation_line("prompt level (distance of each prompt to each task's prompts vs its change on that "
                             "task)", corr["prompts"])]))

    groups = [r["cell"]["task"] for r in records]
    write_results(output, {"settings": config, "records": records, "transfer": transfer, "analysis": analysis},
                  markdown, printed=markdown, plots={
        "prompt_map.png": lambda path: plot_prompt_map(torch.tensor(analysis["map_2d"]), labels, groups, path),
        "similarity.png": lambda path: plot_matrix(torch.tensor(analysis["similarity_tasks"]), tasks, path,
                                                   "‖P_i − P_j‖_F, mean over seeds", fmt="{:.2f}"),
        "similarity_prompts.png": lambda path: plot_matrix(torch.tensor(analysis["similarity_prompts"]), labels, path,
                                                           "‖P_i − P_j‖_F per prompt", fmt="{:.1f}"),
        "transfer.png": lambda path: plot_matrix(torch.tensor(analysis["transfer_tasks"]), tasks, path,
                                                 f"{split} accuracy change vs no prompt (row: prompt's task)",
                                                 fmt="{:+.2f}")})
    return analysis


def finished_records(output: Path, tasks: list[str]) -> list[dict]:
    """Every finished cell's record in the output folder, ordered by task (as configured) and seed."""
    records = [json.loads(path.read_text()) for path in (output / "cells").glob("*/result.json")]
    records = [r for r in records if r["cell"]["task"] in tasks]
    if not records:
        raise ExperimentError(f"{output} holds no finished cells; run the script without --analyse-only first")
    return sorted(records, key=lambda r: (tasks.index(r["cell"]["task"]), r["cell"]["seed"]))


def main(argv=None) -> int:
    args = parse_args(argv)
    output = Path(args.output)
    if args.analyse_only:
        if not (output / SWEEP_FILE).is_file():
            raise ExperimentError(f"{output} holds no sweep ({SWEEP_FILE} is missing); run without --analyse-only")
        config = json.loads((output / SWEEP_FILE).read_text())
        records = finished_records(output, config["tasks"])
        write_report(output, records, transfer_accuracies(output, records, config, None, None), config)
        return 0

    from rlprompt_interp.models import load_lm

    tasks = load_tasks(args.tasks, args.data_dir)
    lm = load_lm(args.model, role="task", dtype=args.dtype)
    init_ids = check_init_texts(args, lm)
    cells = grid(task=args.tasks, seed=args.seeds)
    print(f"{args.mode} mode: {len(cells)} cells ({', '.join(args.tasks)} × seeds {args.seeds}); {args.model}, "
          f"prompt length {args.prompt_length}, {args.steps} steps at most, batch {args.batch_size}", flush=True)
    records = run_cells(args, cells, make_cell_runner(args, tasks, lm, init_ids))
    if records is None:
        return 0
    missing = [cell_name(cell) for cell, record in zip(cells, records) if record is None]
    if missing:
        raise ExperimentError(f"cells {missing} did not finish; run the script again to finish them")
    records.sort(key=lambda r: (args.tasks.index(r["cell"]["task"]), r["cell"]["seed"]))  # as --analyse-only reads them
    config = args.settings()
    transfer = transfer_accuracies(output, records, config, tasks, lm, batch_size=args.eval_batch_size)
    write_report(output, records, transfer, config)
    return 0


if __name__ == "__main__":
    run_script(main)
