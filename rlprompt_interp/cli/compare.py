"""``rlprompt-interp compare``: how similar learned prompts are, and how they transfer across tasks.

Prints the Frobenius similarity matrix of several prompts and the norm statistics per task
(stochasticity across seeds), writes the plots, and with ``--transfer`` the zero-shot cross-task
transfer matrix (Dayton et al., "Interpreting Prompt-Tuning Across SuperGLUE Tasks").
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..atomic import write_json_atomic
from ..metrics.errors import MetricInputError
from ..metrics.similarity import prompt_matrix
from ..prompts import task_model
from .common import add_dtype_argument, positive_int


def describe(prompt, folder: str) -> tuple[str, str]:
    """(label, group) of a prompt: ``task/method/seed`` from its provenance, the folder name otherwise."""
    p = prompt.provenance
    if "task" not in p:
        return Path(folder).name, Path(folder).name
    group = f"{p['task']}/{p.get('method', '?')}"
    return f"{group}/s{p.get('seed', '?')}", group


def format_matrix(matrix: torch.Tensor, rows: list[str], columns: list[str], fmt: str = "{:9.3f}") -> str:
    width = max(len(r) for r in rows) + 2
    lines = [" " * width + " ".join(f"{c[:9]:>9}" for c in columns)]
    for name, values in zip(rows, matrix.tolist()):
        lines.append(f"{name:<{width}}" + " ".join(fmt.format(v) for v in values))
    return "\n".join(lines)


def cmd_compare(args: argparse.Namespace) -> int:
    from ..metrics.similarity import pca_2d, plot_matrix, plot_prompt_map, similarity_matrix, stochasticity
    from ..metrics.transfer import labels_for
    from ..models import load_lm
    from ..prompts import LearnedPrompt

    prompts = [LearnedPrompt.load(folder) for folder in args.folders]
    lms = {}
    matrices = []
    for prompt in prompts:
        spec = task_model(prompt, args.model)
        if not prompt.is_soft and spec not in lms:
            lms[spec] = load_lm(spec, role="task", dtype=args.dtype)
        matrices.append(prompt_matrix(prompt, lms.get(spec)))
    shapes = {tuple(m.shape) for m in matrices}
    if len(shapes) > 1:
        raise MetricInputError(f"prompts of different shapes cannot be compared with ‖A − B‖_F: "
                         f"{dict(zip(args.folders, (tuple(m.shape) for m in matrices)))}; compare prompts of one "
                         "length learned on one model")
    described = [describe(prompt, folder) for prompt, folder in zip(prompts, args.folders)]
    labels = args.labels or labels_for([label for label, _ in described])
    if len(labels) != len(prompts):
        raise MetricInputError(f"--labels needs one label per folder: {len(prompts)} folders, {len(labels)} labels")
    groups = [group for _, group in described]
    similarity = similarity_matrix(matrices)
    stats = stochasticity(matrices, groups)
    print("similarity ‖A − B‖_F (lower = more similar)")
    print(format_matrix(similarity, labels, labels))
    print("\nprompt norms ‖P‖_F per group (stochasticity across seeds)")
    for group, s in stats.items():
        print(f"  {group:<30} n={s['n']}  mean {s['mean_norm']:.3f}  variance {s['variance']:.4f}  "
              f"mean pairwise distance {s['mean_pairwise_distance']:.3f}")
    payload = {"folders": list(args.folders), "labels": labels, "groups": groups,
               "similarity": similarity.tolist(), "stochasticity": stats}
    if args.transfer:
        payload["transfer"] = run_transfer(args, prompts, matrices, labels, lms)
    if args.output_dir:
        out = Path(args.output_dir)
        plot_matrix(similarity, labels, out / "similarity.png", "prompt similarity ‖A − B‖_F")
        plot_prompt_map(pca_2d(matrices), labels, groups, out / "prompt_map.png")
        if args.transfer:
            t = payload["transfer"]
            plot_matrix(torch.tensor(t["transfer"]), labels, out / "transfer.png",
                        f"accuracy change vs no prompt ({t['split']})", fmt="{:+.2f}")
        write_json_atomic(out / "compare.json", payload)
        print(f"\nplots and compare.json written to {out}")
    return 0


def run_transfer(args, prompts, matrices, labels, lms) -> dict:
    """Every prompt on every prompt's task; correlation of the change in accuracy with the similarity.

    Rows are prompts, columns the distinct tasks (each with the template and verbalizers of the
    first prompt learned on it). The similarity of prompt i to task j is its mean distance to the
    prompts learned on j; the correlation leaves out each prompt's own task.
    """
    from ..metrics.transfer import evaluate_transfer, matrix_correlation
    from ..models import load_lm
    from ..notices import warn
    from ..tasks import get_task
    from ..tasks.recorded import describe_definition, use_recorded_definition

    specs = {task_model(p, args.model) for p in prompts}
    if len(specs) != 1:
        raise MetricInputError(f"transfer needs prompts learned on one task LM; these name {sorted(specs)}")
    spec = specs.pop()
    lm = lms.get(spec) or load_lm(spec, role="task", dtype=args.dtype)
    names = [p.provenance.get("task") for p in prompts]
    if None in names:
        raise MetricInputError("transfer needs the task of every prompt in its provenance ('task')")
    tasks, definitions = {}, {}
    for prompt, name, label in zip(prompts, names, labels):
        if name not in tasks:  # each task column with the definition its first prompt was trained with
            tasks[name], definitions[name] = use_recorded_definition(
                get_task(name, data_dir=args.data_dir, seed=args.seed_split), prompt.provenance)
            print(f"task {name}: {describe_definition(definitions[name])} (from {label})")
        else:
            differs = {key for key in ("template", "verbalizers")
                       if prompt.provenance.get(key) not in (None, definitions[name][key])}
            if differs:
                warn(f"{label} was trained on {name} with another {' and '.join(sorted(differs))} than the task "
                     f"column uses ({describe_definition(definitions[name])}); its accuracy there is not its own")
    result = evaluate_transfer(dict(zip(labels, prompts)), tasks, lm, split=args.split, limit=args.limit,
                               batch_size=args.batch_size)
    similarity = similarity_matrix_to_tasks(matrices, names, list(tasks))
    transfer = torch.tensor(result["transfer"], dtype=torch.float64)
    own_task = torch.tensor([[name == column for column in tasks] for name in names])
    result["task_definitions"] = definitions
    result["similarity_to_task"] = similarity.tolist()
    result["correlation"] = matrix_correlation(similarity, transfer, mask=~own_task)
    print(f"\naccuracy change vs no prompt on {args.split} (rows: prompts, columns: tasks)")
    print(format_matrix(transfer, labels, list(tasks), fmt="{:+9.3f}"))
    print("no-prompt accuracy: " + ", ".join(f"{t} {a:.3f}" for t, a in zip(tasks, result["baseline"])))
    c = result["correlation"]
    print(f"correlation with the similarity (other tasks only, n={c['n']}): Pearson {c['pearson']:+.3f}, "
          f"Spearman {c['spearman']:+.3f}")
    return result


def similarity_matrix_to_tasks(matrices, names, tasks) -> torch.Tensor:
    """``[prompts, tasks]``: mean ‖P_i − P_k‖_F over the other prompts k learned on each task."""
    from ..metrics.similarity import frobenius_distance

    result = torch.full((len(matrices), len(tasks)), float("nan"), dtype=torch.float64)
    for i, a in enumerate(matrices):
        for j, task in enumerate(tasks):
            others = [frobenius_distance(a, b) for k, (b, n) in enumerate(zip(matrices, names)) if n == task and k != i]
            if others:
                result[i, j] = sum(others) / len(others)
    return result


def register(commands) -> None:
    compare = commands.add_parser("compare", help="similarity, stochasticity and transfer of learned prompts")
    compare.add_argument("folders", nargs="+", metavar="DIR", help="learned prompt folders (same length and model)")
    compare.add_argument("--labels", nargs="+", help="one label per folder (default: task/method/seed)")
    compare.add_argument("--model", default="auto", help="task LM (auto: the prompts' own)")
    add_dtype_argument(compare)
    compare.add_argument("--output-dir",
                         help="write similarity.png, prompt_map.png (and transfer.png) and compare.json")
    transfer = compare.add_argument_group("zero-shot transfer (--transfer)")
    transfer.add_argument("--transfer", action="store_true",
                          help="evaluate every prompt on every prompt's task against no prompt")
    transfer.add_argument("--data-dir", help="local few-shot data (RLPrompt layout)")
    transfer.add_argument("--seed-split", default="16-42", help="which few-shot split of --data-dir")
    transfer.add_argument("--split", default="dev", choices=["train", "dev", "test"], help="which split to score")
    transfer.add_argument("--limit", type=positive_int, help="score a random N examples of each task (stratified by label)")
    transfer.add_argument("--batch-size", type=positive_int, default=32, help="examples per forward pass")
    compare.set_defaults(run=cmd_compare)
