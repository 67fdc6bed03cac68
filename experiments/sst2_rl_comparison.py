"""SST-2: RLPrompt's soft Q-learning against GRPO and RLOO (TRL) at equal wall-clock time per run.

The three agents learn an L-token prompt for the same task (template, verbalizers, few-shot split)
against the same reward,

    TaskGapReward(task LM)  +  ppl_coef · Perplexity(scorer)      (Perplexity = −perplexity)

with ppl_coef 0 and 0.01, for 3 seeds. Each run trains until its time budget (``--minutes``) is
spent, dev evaluations included, model loading not; every agent stops at the end of the first step
after its budget, and its greedy prompt is scored on dev there: GRPO and RLOO through their time
limit (a TrainerCallback), SQL through ``SQLConfig.max_minutes``. Every
learned prompt is scored on the SST-2 test split by the task LM, and its perplexity under the
scorer is measured.

    python experiments/sst2_rl_comparison.py --quick   # 2 minutes a run, 18 runs: about 1 h on a CPU
    python experiments/sst2_rl_comparison.py --full    # 20 minutes a run (the issue's budget): about 6.5 h
    python experiments/sst2_rl_comparison.py --full --policy-model distilgpt2 --task-model distilgpt2 \\
        --scorer gpt2-xl                                # the paper's models, when the hub is reachable

Both modes use the embedded SmolLM2-135M in every role; they differ in the time budget and in how
many test examples are scored. Writes to ``--output``: ``results.json`` (settings, every run's
record, the summary), ``results.md`` (mean ± std over seeds per agent and reward) and two plots,
``sst2_rl_comparison.png`` (test accuracy against prompt perplexity) and ``learning_curves.png``
(dev accuracy against training minutes). Every run trains in its own folder; running the script
again skips finished runs and resumes a killed one from its checkpoint (its time budget counts the
time it had already spent).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rlprompt_interp.agents.rlprompt import RLPromptAgent
from rlprompt_interp.config import key_value
from rlprompt_interp.experiment import (experiment_parser, markdown_document, parse_experiment_args, run_cells,
                                        run_script, write_results)
from rlprompt_interp.sweep_report import (ACCURACY_COLUMN, PERPLEXITY_COLUMN, SAMPLE_COLUMN, SEEDS_COLUMN, column,
                                          format_number, markdown_table, plot_tradeoff, saved_figure,
                                          summarize_with_log_perplexity, without_records)
from rlprompt_interp.sweeps import add_data_arguments, grid, task_and_models, train_and_evaluate

AGENTS = ("sql", "grpo", "rloo")
PERPLEXITY_FORMS = ("perplexity", "log-perplexity")
# SQL's policy: the best options of sst2_ppl_sweep's quick mode (the LM prior with rewards x 20, whole words and
# punctuation, no repeated token, a task description to write after)
SQL_POLICY = dict(prior_weight=1.0, shaped_range=(0.0, 20.0), action_space="words+punctuation", no_repeat=4,
                  condition="Classify the sentiment of this movie review as positive or negative.")


# --------------------------------------------------------------------------- the grid


def parse_args(argv=None) -> argparse.Namespace:
    # what the runs share; resuming with other values is refused (the grid's axes may grow)
    parser = experiment_parser(__doc__, __file__, options={"agents": dict(choices=AGENTS),
                                                           "perplexity_form": dict(choices=PERPLEXITY_FORMS)},
                               axes=("agents", "ppl_coefs", "seeds"),
                               shared=("data_dir", "seed_split", "sql_option", "trl_option"))
    parser.add_argument("--sql-option", type=key_value, action="append", default=[], metavar="KEY=VALUE",
                        help=f"an RLPromptAgent option over {SQL_POLICY} (e.g. prior_weight=0), repeatable")
    parser.add_argument("--trl-option", type=key_value, action="append", default=[], metavar="KEY=VALUE",
                        help="another GRPOConfig/RLOOConfig field for grpo and rloo, e.g. beta=0.01 (repeatable)")
    add_data_arguments(parser)  # auto: ../shared/data/few-shot when it exists, else the 16-shot split from the hub
    return parse_experiment_args(parser, argv)


def build_cells(args) -> list[dict]:
    return grid(agent=args.agents, ppl_coef=args.ppl_coefs, seed=args.seeds)


def reward_spec(cell: dict, form: str) -> str:
    return "gap=1" + (f",{form}={cell['ppl_coef']:g}" if cell["ppl_coef"] else "")


def make_agent(args, cell: dict):
    from rlprompt_interp.agents import get_agent

    common = dict(model=args.task_model, policy_model=args.policy_model, scorer=args.scorer,
                  reward=reward_spec(cell, args.perplexity_form), prompts_per_step=args.prompts_per_step,
                  examples_per_step=args.examples_per_step, eval_every=args.eval_every, quiet=True)
    if cell["agent"] == "sql":
        return RLPromptAgent(max_minutes=args.minutes, lr=args.sql_lr, **common, **{**SQL_POLICY, **dict(args.sql_option)})
    return get_agent(cell["agent"], lr=args.trl_lr, max_minutes=args.minutes, trl_options=dict(args.trl_option),
                     condition=None, **common)  # the instruction that names the answers, as measured


def make_cell_runner(args, task, models: dict):
    from rlprompt_interp.prompts import LearnedPrompt

    def run_cell(cell: dict, folder: Path) -> dict:
        record = train_and_evaluate(make_agent(args, cell), task, folder, prompt_length=args.prompt_length,
                                    steps=args.max_steps, seed=cell["seed"], eval_lm=models["task"],
                                    scorer=models["scorer"], eval_limit=args.eval_limit, report_to=args.report_to,
                                    config={**args.settings(), **cell})
        curve = LearnedPrompt.load(record["learned_prompt"]).curve
        record["steps"] = max((row["step"] for row in curve), default=0)
        record["train_minutes"] = max((row["time"] for row in curve), default=0.0) / 60
        record["dev_accuracy_by_minute"] = [(row["time"] / 60, row["dev/accuracy"]) for row in curve
                                            if "dev/accuracy" in row]
        print(f"    {record['prompt']!r}: test accuracy {record['test_accuracy']:.4f}, perplexity "
              f"{format_number(record['prompt_perplexity'])}, {record['steps']} steps", flush=True)
        return record

    return run_cell


# --------------------------------------------------------------------------- the report


def results_table(rows: list[dict]) -> str:
    return markdown_table(rows, [column("agent"), column("ppl_coef", "perplexity coef", "{:g}".format), ACCURACY_COLUMN,
                                 PERPLEXITY_COLUMN, column("steps_mean", "steps (mean)", "{:.0f}".format),
                                 SEEDS_COLUMN, SAMPLE_COLUMN])


def label(record: dict) -> str:
    return f"{record['cell']['agent']}, ppl {record['cell']['ppl_coef']:g}"


def plot_tradeoffs(records: list[dict], path: Path) -> None:
    plot_tradeoff([(r["prompt_perplexity"], r["test_accuracy"]) for r in records],
                  [f"s{r['cell']['seed']}" for r in records], path,
                  xlabel="prompt perplexity under the scorer (log scale)", ylabel="SST-2 test accuracy",
                  title="SQL vs GRPO vs RLOO at equal training time", groups=[label(r) for r in records])


def plot_curves(records: list[dict], path: Path) -> None:
    with saved_figure(path) as ax:
        colours = {agent: f"C{i}" for i, agent in enumerate(AGENTS)}
        for record in records:
            points = record["dev_accuracy_by_minute"]
            if points:
                ax.plot(*zip(*points), color=colours[record["cell"]["agent"]], alpha=0.7, marker="o", markersize=3,
                        linestyle="-" if not record["cell"]["ppl_coef"] else "--", label=label(record))
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), fontsize=8)
        ax.set(xlabel="training minutes", ylabel="dev accuracy of the greedy prompt",
               title="Learning curves (one line per seed)")


def main(argv=None) -> int:
    args = parse_args(argv)
    output = Path(args.output)
    task, models = task_and_models(args, "sst-2")
    task = task.with_options(verbalizers=args.verbalizers)
    cells = build_cells(args)
    print(f"{args.mode} mode: {len(cells)} runs of {args.minutes:g} minutes; policy {args.policy_model}, task LM "
          f"{args.task_model}, scorer {args.scorer}; {args.prompts_per_step} prompts x {args.examples_per_step} "
          "examples per step", flush=True)
    records = run_cells(args, cells, make_cell_runner(args, task, models))
    if records is None:
        return 0
    rows = summarize_with_log_perplexity(records, by=["agent", "ppl_coef"], metrics=["steps"])
    table = results_table(rows)
    write_results(output, {"settings": vars(args), "records": records, "summary": without_records(rows)},
        markdown_document(
            f"SST-2: SQL vs GRPO vs RLOO at {args.minutes:g} training minutes a run ({args.mode} mode)",
            f"Policy {args.policy_model}, task LM {args.task_model}, scorer {args.scorer}; prompt length "
            f"{args.prompt_length}, {args.prompts_per_step} prompts x {args.examples_per_step} examples per step, dev "
            f"evaluation every {args.eval_every} steps; SQL lr {args.sql_lr:g}, GRPO/RLOO (LoRA) lr {args.trl_lr:g}; "
            f"test accuracy on {records[0]['eval_examples']} test examples; verbalizers {args.verbalizers}; SQL "
            f"policy { {**SQL_POLICY, **dict(args.sql_option)} }; perplexity term: {args.perplexity_form}.", table),
        printed=table, plots={"sst2_rl_comparison.png": lambda path: plot_tradeoffs(records, path),
                              "learning_curves.png": lambda path: plot_curves(records, path)})
    return 0


if __name__ == "__main__":
    run_script(main)
