"""RLPrompt on SST-2 with a perplexity term in the reward (Figure 3 of "Towards Interpretable Soft Prompts").

Soft Q-learning learns a discrete prompt against

    acc_coef · ClassificationReward(task LM)  +  ppl_coef · Perplexity(scorer)      (Perplexity = −perplexity)

for every (ppl_coef, acc_coef) in {(0, 1), (0.01, 1), (1, 0)} × prompt length in {5, 15} × seeds, plus
an extra arm where the policy may only pick tokens among its frozen LM's top-k (RLPrompt's fluency
constraint) with the accuracy reward alone. Each learned prompt is scored on the SST-2 test split
by the task LM, and its perplexity is measured under the scorer.

    python experiments/sst2_ppl_sweep.py --quick   # embedded SmolLM2-135M for every role, CPU, ~35 min
    python experiments/sst2_ppl_sweep.py --full    # distilgpt2 policy and task LM, gpt2-xl scorer, 12k steps
    accelerate launch experiments/sst2_ppl_sweep.py --full   # cells spread over the launched processes

Writes to ``--output``: ``results.json`` (settings, every cell's record with prompt, accuracy,
perplexity and dev curve, the summary), ``results.md`` (the paper's table with mean ± std over seeds
next to the paper's numbers) and ``sst2_ppl_sweep.png`` (test accuracy against prompt perplexity,
Pareto front marked). Every cell trains in its own folder; running the script again skips finished
cells and resumes a killed one from its checkpoint.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rlprompt_interp.sweep_report import (format_mean_std, format_number, markdown_table, plot_tradeoff,  # noqa: E402
                                          summarize)
from rlprompt_interp.sweeps import (Sweep, add_mode_arguments, apply_mode, train_and_evaluate,  # noqa: E402
                                    write_json_atomic)
from rlprompt_interp.tracking import add_report_to_argument  # noqa: E402

MODES = {
    # The embedded model in every role: 34 min measured with one CPU thread.
    "quick": dict(policy_model="smollm2-135m", task_model="smollm2-135m", scorer="smollm2-135m", steps=12,
                  seeds=[0, 1], prompts_per_step=8, examples_per_step=16, lr=1e-3, eval_every=6, eval_limit=300,
                  fluent_top_k=20),
    # The paper's models with RLPrompt's few-shot classification budget (a GPU is advised).
    "full": dict(policy_model="distilgpt2", task_model="distilgpt2", scorer="gpt2-xl", steps=12000,
                 seeds=[0, 1, 2], prompts_per_step=16, examples_per_step=16, lr=5e-5, eval_every=50,
                 eval_limit=None, fluent_top_k=20),
}
PAPER = {  # (length, ppl_coef, acc_coef) -> (accuracy, sample prompt); distilgpt2 task LM, GPT2-XL scorer
    (5, 0.0, 1.0): (0.81, "Role Owner Media Widget profoundly"),
    (5, 0.01, 1.0): (0.71, "Buffer Response Pattern Cache absolutely"),
    (5, 1.0, 0.0): (0.50, "Site Style Set Style :"),
    (15, 0.0, 1.0): (0.78, "Platform Offline Remote Student Station ..."),
    (15, 0.01, 1.0): (0.69, "Site Site Site Manager Manager ..."),
    (15, 1.0, 0.0): (0.50, "Options Info Info Info ..."),
}


def coefficient_pair(text: str) -> tuple[float, float]:
    """``"0.01,1"`` -> (perplexity coefficient, accuracy coefficient)."""
    try:
        ppl, acc = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected PPL_COEF,ACC_COEF such as 0.01,1; got {text!r}") from None
    if ppl < 0 or acc < 0 or ppl == acc == 0:
        raise argparse.ArgumentTypeError(f"coefficients must be non-negative and not both zero; got {text!r}")
    return ppl, acc


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_mode_arguments(parser, {"quick": "embedded model, CPU budget", "full": "the paper's models and budget"})
    parser.add_argument("--coefficients", type=coefficient_pair, nargs="+", metavar="PPL,ACC",
                        default=[(0.0, 1.0), (0.01, 1.0), (1.0, 0.0)], help="reward coefficient pairs")
    parser.add_argument("--lengths", type=int, nargs="+", default=[5, 15], help="prompt lengths")
    parser.add_argument("--seeds", type=int, nargs="+", help="training seeds (quick: 0 1, full: 0 1 2)")
    parser.add_argument("--fluent-top-k", type=int,
                        help="the fluent arm's k (quick/full: 20); 0 leaves the arm out")
    parser.add_argument("--perplexity-form", choices=["perplexity", "log-perplexity"], default="perplexity",
                        help="reward term: minus the perplexity (the paper) or minus its log")
    parser.add_argument("--data-dir", default="auto",
                        help="RLPrompt's few-shot folder, or hub (the same K-shot split drawn from the hub's SST-2); "
                             "auto: ../shared/data/few-shot when it exists, else the hub")
    parser.add_argument("--seed-split", default="16-42", help="which few-shot split")
    parser.add_argument("--output", help="output folder (default: runs/sst2-ppl-sweep-<mode>)")
    parser.add_argument("--threads", type=int, help="torch threads (1 on a shared machine)")
    add_report_to_argument(parser)
    for key, value in MODES["quick"].items():
        if key in ("seeds", "fluent_top_k"):
            continue
        kind = float if isinstance(value, float) else int if isinstance(value, int) else str
        parser.add_argument("--" + key.replace("_", "-"), type=kind, default=None,
                            help=f"(quick: {value}, full: {MODES['full'][key]})")
    args = apply_mode(parser.parse_args(argv), MODES)
    if args.output is None:
        args.output = str(ROOT / "runs" / f"sst2-ppl-sweep-{args.mode}")
    return args


def build_cells(args) -> list[dict]:
    """Coefficient pairs × lengths × seeds, then the fluent arm (accuracy only, top-k tokens)."""
    arms = [dict(ppl_coef=ppl, acc_coef=acc, fluent_top_k=0) for ppl, acc in args.coefficients]
    if args.fluent_top_k:
        arms.append(dict(ppl_coef=0.0, acc_coef=1.0, fluent_top_k=args.fluent_top_k))
    return [dict(length=length, **arm, seed=seed) for length in args.lengths for arm in arms for seed in args.seeds]


def reward_spec(cell: dict, form: str) -> str:
    terms = [f"accuracy={cell['acc_coef']:g}"] if cell["acc_coef"] else []
    if cell["ppl_coef"]:
        terms.append(f"{form}={cell['ppl_coef']:g}")
    return ",".join(terms)


def sweep_config(args) -> dict:
    """Everything the cells share; resuming with other values is refused."""
    keys = ("mode", "policy_model", "task_model", "scorer", "steps", "prompts_per_step", "examples_per_step", "lr",
            "eval_every", "eval_limit", "perplexity_form", "data_dir", "seed_split")
    return {key: getattr(args, key) for key in keys}


def make_cell_runner(args, task, models: dict):
    from rlprompt_interp.agents.rlprompt import RLPromptAgent

    def run_cell(cell: dict, folder: Path) -> dict:
        agent = RLPromptAgent(model=args.task_model, policy_model=args.policy_model, scorer=args.scorer,
                              reward=reward_spec(cell, args.perplexity_form), prompts_per_step=args.prompts_per_step,
                              examples_per_step=args.examples_per_step, lr=args.lr,
                              fluent_top_k=cell["fluent_top_k"] or None, eval_every=args.eval_every, quiet=True)
        record = train_and_evaluate(agent, task, folder, prompt_length=cell["length"], steps=args.steps,
                                    seed=cell["seed"], eval_lm=models["task"], scorer=models["scorer"],
                                    eval_limit=args.eval_limit, report_to=args.report_to,
                                    config={**sweep_config(args), **cell})
        print(f"    {record['prompt']!r}: test accuracy {record['test_accuracy']:.4f}, "
              f"perplexity {format_number(record['prompt_perplexity'])}", flush=True)
        return record

    return run_cell


def no_prompt_baseline(args, task, models: dict, output: Path) -> dict:
    """Test accuracy without a prompt on the same examples (computed once, kept in the output folder)."""
    import json

    from rlprompt_interp.evaluation import evaluate_prompt

    path = output / "no_prompt.json"
    if path.is_file():
        return json.loads(path.read_text())
    report = evaluate_prompt(task, models["task"], "", split="test", limit=args.eval_limit, progress=False)
    result = {"test_accuracy": report.accuracy, "eval_examples": report.num_examples,
              "predicted_fraction": report.predicted_fraction}
    write_json_atomic(path, result)
    return result


def arm_label(row: dict) -> str:
    return f"fluent top-{row['fluent_top_k']}" if row["fluent_top_k"] else "-"


def summary_rows(records: list[dict]) -> list[dict]:
    for record in records:
        ppl = record.get("prompt_perplexity")
        record["log_perplexity"] = math.log(ppl) if ppl else None
    rows = summarize(records, by=["length", "ppl_coef", "acc_coef", "fluent_top_k"],
                     metrics=["test_accuracy", "log_perplexity"])
    for row in rows:
        row["paper"] = PAPER.get((row["length"], row["ppl_coef"], row["acc_coef"])) if not row["fluent_top_k"] else None
    return rows


def results_table(rows: list[dict], baseline: dict) -> str:
    def sample(row):
        best = max(row["records"], key=lambda r: r["test_accuracy"])
        return repr(best["prompt"])

    columns = [
        ("prompt length", lambda r: r["length"]),
        ("perplexity coef", lambda r: f"{r['ppl_coef']:g}"),
        ("accuracy coef", lambda r: f"{r['acc_coef']:g}"),
        ("constraint", arm_label),
        ("test accuracy (mean ± std)", lambda r: format_mean_std(r["test_accuracy_mean"], r["test_accuracy_std"])),
        ("prompt perplexity (geometric mean)", lambda r: format_number(math.exp(r["log_perplexity_mean"]))
         if not math.isnan(r["log_perplexity_mean"]) else "-"),
        ("seeds", lambda r: r["n"]),
        ("sample prompt (best seed)", sample),
        ("paper accuracy", lambda r: f"{r['paper'][0]:.2f}" if r["paper"] else "-"),
        ("paper sample prompt", lambda r: r["paper"][1] if r["paper"] else "-"),
    ]
    note = (f"No prompt: test accuracy {baseline['test_accuracy']:.4f} on the same {baseline['eval_examples']} "
            "test examples.")
    return markdown_table(rows, columns) + "\n\n" + note


def plot(records: list[dict], path: Path) -> Path:
    points = [(r["prompt_perplexity"], r["test_accuracy"]) for r in records]
    labels = [f"L={r['cell']['length']} s{r['cell']['seed']}" for r in records]
    groups = [f"ppl {r['cell']['ppl_coef']:g}, acc {r['cell']['acc_coef']:g}"
              + (f", fluent top-{r['cell']['fluent_top_k']}" if r["cell"]["fluent_top_k"] else "") for r in records]
    return plot_tradeoff(points, labels, path, xlabel="prompt perplexity under the scorer (log scale)",
                         ylabel="SST-2 test accuracy", title="RLPrompt: accuracy vs perplexity", groups=groups)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch
    from rlprompt_interp.models import load_lm, process_state
    from rlprompt_interp.tasks import get_task
    from rlprompt_interp.tasks.sources import few_shot_source

    if args.threads:
        torch.set_num_threads(args.threads)
    output = Path(args.output)
    source, where = few_shot_source(args.data_dir, args.seed_split)
    args.data_dir = source["data_dir"] or "hub"  # what the sweep's settings record
    task = get_task("sst-2", **source)
    print(f"data: {where}", flush=True)
    models = {"task": load_lm(args.task_model, role="task"), "scorer": load_lm(args.scorer, role="scorer")}
    cells = build_cells(args)
    print(f"{args.mode} mode: {len(cells)} cells; policy {args.policy_model}, task LM {args.task_model}, scorer "
          f"{args.scorer}; {args.steps} steps x {args.prompts_per_step} prompts x {args.examples_per_step} examples",
          flush=True)
    sweep = Sweep(output, cells, make_cell_runner(args, task, models), config=sweep_config(args))
    records = sweep.run()
    if not process_state().is_main_process:
        return 0
    baseline = no_prompt_baseline(args, task, models, output)
    rows = summary_rows(records)
    table = results_table(rows, baseline)
    write_json_atomic(output / "results.json", {
        "settings": vars(args), "no_prompt": baseline, "records": records,
        "summary": [{k: v for k, v in row.items() if k != "records"} for row in rows]})
    (output / "results.md").write_text(
        f"# SST-2: RLPrompt accuracy vs prompt perplexity ({args.mode} mode)\n\n"
        f"Policy {args.policy_model}, task LM {args.task_model}, scorer {args.scorer}; {args.steps} steps, "
        f"{args.prompts_per_step} prompts x {args.examples_per_step} examples per step, lr {args.lr:g}; test accuracy "
        f"on {baseline['eval_examples']} test examples; perplexity term: {args.perplexity_form}.\n"
        "The paper's columns: distilgpt2 task LM, GPT2-XL scorer.\n\n" + table + "\n")
    plot(records, output / "sst2_ppl_sweep.png")
    print(table)
    print(f"written: {output / 'results.json'}, {output / 'results.md'}, {output / 'sst2_ppl_sweep.png'}")
    return 0


if __name__ == "__main__":
    from rlprompt_interp.cli import run_reporting_errors

    sys.exit(run_reporting_errors(main))
