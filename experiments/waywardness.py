"""Prompt Waywardness (Khashabi et al. 2022): Figure 3 (the γ sweep) and Table 2 (the main table).

Continuous prompt tuning pulled toward an arbitrary target text p_d (``agents/wayward.py``):

    loss = CE(p_c) + γ · ‖p_c − E(p_d)‖²₂ / L,   p_c initialised at E(p_d), L = tokens of p_d.

Two tables come out of one set of cells (task, target, γ, seed), each trained once:

1. **γ sweep** (paper's Fig. 3): one task (SST-2) and one target, γ from 0 to 0.03; test accuracy
   and prompt F1 against γ.
2. **Main table** (paper's Table 2): every task × target, γ = 0.01 against the unconstrained γ = 0
   run of the same length and initialisation (the paper's p̃_c vs p_c*): accuracy, drop, prompt F1,
   mean ± std over seeds, then averaged per task and target source next to the paper's figures.

Prompt F1 (``metrics/prompt_f1.py``) compares the target with the nearest-token projection of the
learned prompt. The paper projects by the highest dot product; on models whose embedding norms
vary a lot (SmolLM2) that projection does not even map the target's own embeddings back to the
target, so every cell also reports F1 under the Euclidean (and cosine) projection, and the F1 of
the initial prompt E(p_d) under each (what training starts from). The learned prompt is the one
with the best dev accuracy among the evaluations (step 0 included), as the agent returns it.

    python experiments/waywardness.py --quick   # SmolLM2-135M on CPU, ~20 min with one thread
    python experiments/waywardness.py --full    # GPT-2 large, batch 8, lr 0.01, 2000 steps, 3 seeds
    accelerate launch experiments/waywardness.py --full   # cells spread over GPUs

Targets are ``<file>:<key>`` entries of ``--targets-dir`` (``natural_prompts``, ``pile``, ...), or
``<file>:*`` for every entry of a file. Writes ``results.json``, ``results.md`` and
``waywardness.png`` to ``--output``; re-running skips finished cells and resumes a killed one.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from rlprompt_interp.experiment import (experiment_parser, markdown_document, parse_experiment_args, run_cells,
                                        run_script, write_results)
from rlprompt_interp.models import DTYPE_CHOICES
from rlprompt_interp.sweep_report import (SEEDS_COLUMN, column, first_seed, format_mean_std, format_number,
                                          markdown_table, mean_std_column, saved_figure, summarize, without_records)

ROOT = Path(__file__).resolve().parents[1]

NATURAL_TARGET = "natural_prompts:subtask060_ropes_question_generation"  # an example in an error message

# Table 1 (unconstrained accuracy, GPT-2 large) and Table 2 (γ = 0.01) of the paper: per task and
# target source, (Acc(p_c*), Acc(p̃_c), relative drop Δ in %, prompt F1 in %).
PAPER_UNCONSTRAINED = {"sst-2": 92.4, "sst-5": 50.3, "agnews": 88.1, "subj": 90.5, "trec": 88.0}
PAPER_TABLE2 = {
    ("sst-2", "natural_prompts"): (92.4, 91.8, 0.7, 99.0), ("sst-2", "pile"): (92.5, 92.0, 0.5, 97.1),
    ("sst-5", "natural_prompts"): (50.2, 48.5, 3.3, 95.9), ("sst-5", "pile"): (50.5, 50.2, 0.7, 92.4),
    ("agnews", "natural_prompts"): (88.0, 86.6, 1.6, 97.4), ("agnews", "pile"): (88.1, 88.2, -0.1, 97.5),
    ("subj", "natural_prompts"): (91.3, 89.5, 2.0, 97.3), ("subj", "pile"): (89.6, 88.8, 0.9, 94.4),
    ("trec", "natural_prompts"): (87.5, 84.7, 3.3, 86.5), ("trec", "pile"): (88.5, 87.5, 1.2, 85.6),
}
PROJECTIONS = ("dot", "euclidean", "cosine")  # "dot" is the paper's d-proj
# the grid's axes: a rerun may change them, not the other settings (what every cell shares: ``args.settings()``)
AXES = ("seeds", "sweep_task", "sweep_target", "gammas", "gamma", "tasks", "targets")
F1_METRICS = [f"f1_{metric}" for metric in PROJECTIONS] + [f"init_f1_{metric}" for metric in PROJECTIONS]


# --------------------------------------------------------------------------- command line


def parse_args(argv=None) -> argparse.Namespace:
    parser = experiment_parser(__doc__, __file__, axes=AXES, shared=("dtype", "seed_split"),
                               options={"dev_limit": dict(type=int), "gammas": dict(type=float, at_least=0),
                                        "gamma": dict(at_least=0)})
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "few-shot"))
    parser.add_argument("--targets-dir", default=str(ROOT.parent / "shared" / "data" / "waywardness-targets"),
                        help="folder of JSON files name -> target text (natural_prompts.json, pile.json, ...)")
    parser.add_argument("--seed-split", default="16-42", help="few-shot split of the tasks")
    parser.add_argument("--dtype", default="auto", choices=DTYPE_CHOICES, help="task LM dtype")
    return parse_experiment_args(parser, argv)


def resolve_targets(specs: list[str], targets_dir: str | Path) -> dict[str, str]:
    """``file:key`` (or ``file:*``) specs -> {spec of one target: its text}, in the order given."""
    from rlprompt_interp.agents.wayward import read_target

    targets_dir = Path(targets_dir)
    resolved: dict[str, str] = {}
    for spec in specs:
        if ":" not in spec:
            raise SystemExit(f"target {spec!r} must read <file>:<key> (e.g. {NATURAL_TARGET}) or <file>:*")
        stem, key = spec.split(":", 1)
        path = targets_dir / f"{stem}.json"
        if not path.is_file():
            found = ", ".join(sorted(p.stem for p in targets_dir.glob("*.json"))) or "none"
            raise SystemExit(f"target file {path} does not exist (files in {targets_dir}: {found})")
        keys = list(json.loads(path.read_text())) if key == "*" else [key]
        for name in keys:
            resolved[f"{stem}:{name}"] = read_target(path, name)
    return resolved


def build_agent(args: argparse.Namespace, target_text: str, gamma: float):
    """The wayward agent of one cell (γ = 0 is the unconstrained prompt of the same length and init)."""
    from rlprompt_interp.agents.wayward import WaywardAgent

    return WaywardAgent(model=args.model, dtype=args.dtype, target_text=target_text, gamma=gamma, lr=args.lr,
                        batch_size=args.batch_size, eval_every=args.eval_every, eval_batch_size=args.eval_batch_size,
                        dev_limit=args.dev_limit, projection_metric="dot", quiet=True)


def build_cells(args: argparse.Namespace, targets: dict[str, str]) -> list[dict]:
    """The sweep's cells and the main table's, each once; the issue-4 pair (sweep task and target,
    γ = 0 and γ = args.gamma) first, so an interrupted quick run has it."""
    from rlprompt_interp.sweeps import cell_name, grid

    first = grid(task=[args.sweep_task], target=[args.sweep_target], gamma=[0.0, args.gamma], seed=args.seeds)
    sweep = grid(task=[args.sweep_task], target=[args.sweep_target], gamma=args.gammas, seed=args.seeds)
    main = grid(task=args.tasks, target=list(targets), gamma=[0.0, args.gamma], seed=args.seeds)
    cells = {}
    for cell in first + sweep + main:
        cells.setdefault(cell_name(cell), cell)
    return list(cells.values())


# --------------------------------------------------------------------------- one cell


def projections(lm, embeddings, target_text: str) -> dict:
    """Texts of the nearest-token projections of ``embeddings`` ``[L, d]`` and their prompt F1 to the target."""
    from rlprompt_interp.agents.continuous import embedding_table, nearest_tokens
    from rlprompt_interp.metrics.prompt_f1 import prompt_f1

    table = embedding_table(lm)
    out = {}
    for metric in PROJECTIONS:
        text = lm.tokenizer.decode(nearest_tokens(embeddings, table, metric).tolist())
        out[f"projection_{metric}"], out[f"f1_{metric}"] = text, prompt_f1(text, target_text)
    return out


def run_cell(args: argparse.Namespace, targets: dict[str, str], cell: dict, folder: Path) -> dict:
    from rlprompt_interp.agents.continuous import embedding_table, text_ids
    from rlprompt_interp.models import load_lm
    from rlprompt_interp.prompts import LearnedPrompt
    from rlprompt_interp.sweeps import train_and_evaluate
    from rlprompt_interp.tasks import get_task

    target_text = targets[cell["target"]]
    task = get_task(cell["task"], data_dir=args.data_dir, seed=args.seed_split, template=args.template)
    agent = build_agent(args, target_text, cell["gamma"])
    lm = load_lm(args.model, role="task", dtype=args.dtype)  # the agent's own (cached) task LM
    record = train_and_evaluate(agent, task, folder, prompt_length=0, steps=args.steps, seed=cell["seed"],
                                eval_lm=lm, eval_split="test", eval_limit=args.eval_limit,
                                eval_batch_size=args.eval_batch_size, report_to=args.report_to,
                                config={**args.settings(), **cell})
    learned = LearnedPrompt.load(record["learned_prompt"])
    target_ids = text_ids(lm, target_text)
    initial = projections(lm, embedding_table(lm)[target_ids], target_text)
    distances = [entry["distance"] for entry in learned.curve if "distance" in entry]
    return {**record, "target_text": target_text, "target_tokens": len(target_ids),
            **projections(lm, learned.embeddings, target_text),
            **{f"init_{key}": value for key, value in initial.items()},
            "final_distance": distances[-1] if distances else None,
            "best_step": learned.scores.get("best_step"), "dev_accuracy": learned.scores.get("dev_accuracy"),
            "initial_dev_accuracy": learned.scores.get("initial_dev_accuracy")}


# --------------------------------------------------------------------------- tables


def sweep_rows(args, records: list[dict]) -> list[dict]:
    members = [r for r in records if r["cell"]["task"] == args.sweep_task and r["cell"]["target"] == args.sweep_target
               and r["cell"]["gamma"] in args.gammas]
    rows = summarize(members, ["gamma"], ["test_accuracy", *F1_METRICS, "final_distance"])
    return sorted(rows, key=lambda row: row["gamma"])


def pairs(args, records: list[dict]) -> list[dict]:
    """γ = args.gamma against γ = 0 of the same task, target and seed: one record per pair."""
    by_cell = {(r["cell"]["task"], r["cell"]["target"], r["cell"]["gamma"], r["cell"]["seed"]): r for r in records}
    out = []
    for (task, target, gamma, seed), held in by_cell.items():
        free = by_cell.get((task, target, 0.0, seed))
        if gamma != args.gamma or task not in args.tasks or free is None or held is free:
            continue
        drop = free["test_accuracy"] - held["test_accuracy"]
        out.append({"cell": {"task": task, "source": target.split(":")[0], "target": target, "seed": seed},
                    "target_tokens": held["target_tokens"], "free_accuracy": free["test_accuracy"],
                    "accuracy": held["test_accuracy"], "drop": drop,
                    "relative_drop": 100 * drop / free["test_accuracy"] if free["test_accuracy"] else math.nan,
                    **{key: held[key] for key in F1_METRICS},
                    "free_f1_dot": free["f1_dot"], "free_f1_euclidean": free["f1_euclidean"],
                    "projection_dot": held["projection_dot"], "projection_euclidean": held["projection_euclidean"],
                    "free_projection_dot": free["projection_dot"]})
    return out


PAIR_METRICS = ["free_accuracy", "accuracy", "drop", "relative_drop", *F1_METRICS, "free_f1_dot", "free_f1_euclidean"]


def main_rows(args, pair_records: list[dict]) -> tuple[list[dict], list[dict]]:
    """Per task × target (mean ± std over seeds), and per task × target source (over targets and seeds)."""
    return (summarize(pair_records, ["task", "target"], PAIR_METRICS),
            summarize(pair_records, ["task", "source"], PAIR_METRICS))


def ms(row, metric, digits=3):
    return format_mean_std(row[f"{metric}_mean"], row[f"{metric}_std"], digits)


def both(row, dot_metric, euclidean_metric):
    """``dot / eucl.`` means of two F1 metrics in one cell."""
    return f"{format_number(row[f'{dot_metric}_mean'])} / {format_number(row[f'{euclidean_metric}_mean'])}"


F1_COLUMNS = [mean_std_column("F1 dot", "f1_dot"), mean_std_column("F1 eucl.", "f1_euclidean")]
INIT_F1_COLUMN = ("init F1 dot / eucl.", lambda r: both(r, "init_f1_dot", "init_f1_euclidean"))
PROJECTION_COLUMNS = [first_seed("projection_dot", "projection (dot, first seed)"),
                      first_seed("projection_euclidean", "projection (eucl., first seed)")]


def sweep_table(rows: list[dict]) -> str:
    return markdown_table(rows, [
        column("gamma", "γ", "{:g}".format), mean_std_column("test acc", "test_accuracy"), *F1_COLUMNS,
        mean_std_column("F1 cos.", "f1_cosine"), INIT_F1_COLUMN,
        column("final_distance_mean", "‖p_c − E(p_d)‖²/L at the last step", format_number),
        SEEDS_COLUMN, *PROJECTION_COLUMNS])


def main_table(args, rows: list[dict]) -> str:
    return markdown_table(rows, [
        column("task"), column("target"), first_seed("target_tokens", "L"),
        mean_std_column("acc γ=0", "free_accuracy"), mean_std_column(f"acc γ={args.gamma:g}", "accuracy"),
        mean_std_column("acc drop", "drop"), *F1_COLUMNS, INIT_F1_COLUMN,
        ("γ=0 F1 dot / eucl.", lambda r: both(r, "free_f1_dot", "free_f1_euclidean")),
        SEEDS_COLUMN, *PROJECTION_COLUMNS])


def source_table(rows: list[dict]) -> str:
    """Per task and target source, the measured figures beside the paper's Table 1 and 2 (in %)."""
    def paper(row, fmt):
        figures = PAPER_TABLE2.get((row["task"], row["source"]))
        return fmt(figures) if figures else "-"

    return markdown_table(rows, [
        column("task"), column("source"),
        ("measured Acc(p_c*) → Acc(p̃_c)",
         lambda r: f"{100 * r['free_accuracy_mean']:.1f} → {100 * r['accuracy_mean']:.1f}"),
        ("measured Δ", lambda r: f"{r['relative_drop_mean']:.1f}"),
        ("measured F1 dot", lambda r: f"{100 * r['f1_dot_mean']:.1f}"),
        ("measured F1 eucl.", lambda r: f"{100 * r['f1_euclidean_mean']:.1f}"), ("runs", lambda r: r["n"]),
        ("paper Acc(p_c*) → Acc(p̃_c)", lambda r: paper(r, lambda p: f"{p[0]} → {p[1]}")),
        ("paper Δ", lambda r: paper(r, lambda p: p[2])), ("paper F1", lambda r: paper(r, lambda p: p[3])),
        ("paper unconstrained (Table 1)", lambda r: PAPER_UNCONSTRAINED.get(r["task"], "-"))])


def render(args, sweep: list[dict], per_target: list[dict], per_source: list[dict]) -> str:
    return markdown_document(
        f"Prompt Waywardness ({args.mode} mode: {args.model}, {args.steps} steps, batch {args.batch_size}, "
        f"lr {args.lr}, seeds {args.seeds}, test limit {args.eval_limit})",
        "Prompt F1 is given under the paper's highest-dot-product projection (`F1 dot`) and under the "
        "Euclidean nearest-neighbour projection (`F1 eucl.`); `init` is the F1 of the initial prompt E(p_d) "
        "itself. Where the dot projection does not map E(p_d) back to p_d (init F1 dot < 1, as with SmolLM2, "
        "whose embedding norms vary), F1 dot understates how close the prompt stays; the Euclidean projection "
        "of E(p_d) is p_d (init F1 eucl. = 1). Accuracies are test accuracies of the soft prompt with the best "
        "dev accuracy among the evaluations (step 0 included); mean ± std over seeds.",
        headline(args, per_target),
        sweep and "\n\n".join([
            f"## γ sweep: {args.sweep_task}, target `{args.sweep_target}` (paper's Fig. 3)", sweep_table(sweep),
            "Paper (GPT-2 large, SST-2, 32 targets × 3 seeds): accuracy falls slightly from the unconstrained 92.4 as "
            "γ grows to 0.03 while prompt F1 rises toward 1."]),
        per_target and "\n\n".join([
            f"## Main table: γ = {args.gamma:g} against the unconstrained γ = 0 prompt of the same length and init "
            "(paper's Table 2)", main_table(args, per_target),
            "### Per task and target source, next to the paper (accuracies in %, Δ = relative drop in %)",
            source_table(per_source),
            "Paper: GPT-2 large, batch 8, lr 0.01, 2000 steps, 3 seeds, 32 natural-instruction and 30 Pile targets; "
            "≥ 94% prompt F1 within 2% of the unconstrained accuracy."]))


def headline(args, per_target: list[dict]) -> str:
    """The sweep task and target at γ against γ = 0 (issue 4's acceptance figure), in one sentence."""
    rows = [row for row in per_target if row["task"] == args.sweep_task and row["target"] == args.sweep_target]
    if not rows:
        return ""
    row = rows[0]
    return (f"**{row['task']}, target `{row['target']}` ({row['records'][0]['target_tokens']} tokens), "
            f"γ = {args.gamma:g}:** test accuracy {ms(row, 'accuracy')} against {ms(row, 'free_accuracy')} for the "
            f"unconstrained (γ = 0) prompt of the same length and init (drop {ms(row, 'drop')}); prompt F1 "
            f"{ms(row, 'f1_dot')} (dot projection), {ms(row, 'f1_euclidean')} (Euclidean); at init "
            f"{both(row, 'init_f1_dot', 'init_f1_euclidean')}; the γ = 0 prompt ends at "
            f"{both(row, 'free_f1_dot', 'free_f1_euclidean')}.")


def plot(args, sweep: list[dict], per_target: list[dict], path: Path) -> Path:
    with saved_figure(path, 2, (11, 4.2)) as axes:
        gammas = [row["gamma"] for row in sweep]
        for metric, label, style in (("test_accuracy", "test accuracy", "-o"), ("f1_dot", "prompt F1 (dot)", "--s"),
                                     ("f1_euclidean", "prompt F1 (eucl.)", ":^")):
            axes[0].errorbar(gammas, [row[f"{metric}_mean"] for row in sweep], yerr=[row[f"{metric}_std"] for row in sweep],
                             fmt=style, capsize=3, label=label)
        axes[0].set(xlabel="γ", ylabel="score", ylim=(0, 1.05))
        axes[0].set_title(f"γ sweep: {args.sweep_task}\ntarget {args.sweep_target}", fontsize=9)
        axes[0].legend(fontsize=7)
        for task in dict.fromkeys(row["task"] for row in per_target):
            members = [row for row in per_target if row["task"] == task]
            axes[1].scatter([row["f1_dot_mean"] for row in members], [100 * row["drop_mean"] for row in members],
                            label=f"{task} (F1 dot)", marker="o")
            axes[1].scatter([row["f1_euclidean_mean"] for row in members], [100 * row["drop_mean"] for row in members],
                            label=f"{task} (F1 eucl.)", marker="x")
        axes[1].axhline(0, color="grey", linewidth=0.8)
        axes[1].set(xlabel="prompt F1", ylabel="accuracy drop from γ=0 (points)")
        axes[1].set_title(f"main table: γ = {args.gamma:g} against γ = 0", fontsize=9)
        if per_target:
            axes[1].legend(fontsize=7)
    return path


# --------------------------------------------------------------------------- main


def main(argv=None) -> int:
    args = parse_args(argv)
    targets = resolve_targets(args.targets, args.targets_dir)
    targets.update(resolve_targets([args.sweep_target], args.targets_dir))
    cells = build_cells(args, targets)
    print(f"mode {args.mode}: {len(cells)} cells, {args.model}, {args.steps} steps, batch {args.batch_size}, "
          f"lr {args.lr}, test limit {args.eval_limit}", flush=True)
    records = run_cells(args, cells, lambda cell, folder: run_cell(args, targets, cell, folder))
    if records is None:
        return 0
    by_gamma, pair_records = sweep_rows(args, records), pairs(args, records)
    per_target, per_source = main_rows(args, pair_records)
    text = render(args, by_gamma, per_target, per_source)
    write_results(args.output, {"config": {**args.settings(), **{k: getattr(args, k) for k in AXES}}, "targets": targets,
        "records": records, "pairs": pair_records, "sweep": without_records(by_gamma),
        "main": without_records(per_target), "main_by_source": without_records(per_source),
        "paper": {"unconstrained": PAPER_UNCONSTRAINED,
                  "table2": {f"{task}/{source}": value for (task, source), value in PAPER_TABLE2.items()}}},
        text, printed=text,
        plots={"waywardness.png": lambda path: plot(args, by_gamma, per_target, path)})
    return 0


if __name__ == "__main__":
    run_script(main)
