"""`train --agent rlprompt`'s defaults on five few-shot tasks, against no prompt, a hand template and a soft prompt;
with ``--full``, RLPrompt's classification table on eleven tasks.

Quick mode: SST-2, SST-5, AG News, Subj and TREC in RLPrompt's 16-shot setting (split 16-42), each learned
by the RL agent with nothing but its defaults (the task's own description as the policy's context, the LM
prior, whole words, the best five dev prompts scored again on dev and train) for ``--steps`` steps,
and by a 5-token soft prompt (``--agent soft-prompt``'s defaults) as the continuous reference. Every
prompt is scored on the whole test split (fp32), where each task's discrete prompts share one pass
over the test set; the learned prompts' perplexity is measured under the scorer.

Full mode is RLPrompt's own setting (Deng et al., 2022, Table 2): the recipe ``rlprompt-roberta``
(distilgpt2 writes 5-token prompts for 12,000 steps, RoBERTa-large reads them in a cloze template) on
SST-2, MR, CR, SST-5, Yelp-2, Yelp-5, AG News, Subj, TREC, Yahoo and DBPedia, each with RLPrompt's template
and verbalizers (``tasks.RLPROMPT_MASKED``). A task the data folder does not hold is drawn from the hub
(16 training and 16 dev examples per class). Offline, ``--model random:roberta-large --policy-model
random:distilgpt2 --scorer random:distilgpt2`` runs the same code on random models of those shapes.

    python experiments/five_tasks.py --quick                  # the embedded SmolLM2-135M, 100 steps
    python experiments/five_tasks.py --full                   # RLPrompt's table: RoBERTa-large (the hub, a GPU)
    python experiments/five_tasks.py --quick --seeds 0        # one seed of every task first; add seeds later
    python experiments/five_tasks.py --quick --soft-seeds 0 1 2   # the soft prompt on three seeds too
    torchrun --standalone --nproc_per_node 2 experiments/five_tasks.py --quick --threads 1   # training on 2 processes

Training runs are the sweep's cells (``cells/seed=S,method=M,task=T``): running the script again
skips finished ones and resumes a killed one from its checkpoint, and several processes share them.
Test scores are kept per task in ``test/<task>.json``, so a run with more seeds scores only the new
prompts. The test evaluation runs on the main process once every training cell is done. Writes
``results.json`` and ``results.md`` (the table) to ``--output``.
"""

from __future__ import annotations

import time
from pathlib import Path

from rlprompt_interp.experiment import (experiment_parser, markdown_document, parse_experiment_args, run_cells,
                                        run_script, write_results)
from rlprompt_interp.sweep_report import column, format_mean_std, format_number, markdown_table, mean_std
from rlprompt_interp.sweeps import add_data_arguments, grid, score_prompts, train_cell, training_seconds

METHODS = ("rlprompt", "soft-prompt")
PROMPT_LENGTH = 5
# One hand template per task, the best of two or three tried on 400 test sentences of SmolLM2-135M
# (the reference is slightly favoured by that choice; the learned prompts saw no test sentence).
HAND_TEMPLATES = {"sst-2": " Sentiment:", "sst-5": " Sentiment:", "agnews": " Topic:", "subj": " This text is",
                  "trec": " This question asks for a", "mr": " Sentiment:", "cr": " Sentiment:", "yelp-2": " Sentiment:",
                  "yelp-5": " Sentiment:", "yahoo": " Topic:", "dbpedia": " Topic:"}


def parse_args(argv=None):
    # what every cell shares (resuming with other values is refused) but the grid's axes (seeds may grow)
    parser = experiment_parser(__doc__, __file__, axes=("tasks", "seeds", "soft_seeds", "methods"),
                               shared=("data_dir", "seed_split"))
    add_data_arguments(parser)
    return parse_experiment_args(parser, argv)


def load_task(args, name: str):
    """The task from the data folder (the hub's 16-shot draw where the folder does not hold it), with RLPrompt's
    cloze template and verbalizers when the task LM is a masked one."""
    from rlprompt_interp.models import EVAL_DTYPE, load_lm
    from rlprompt_interp.tasks import get_task
    from rlprompt_interp.tasks.registry import rlprompt_cloze
    from rlprompt_interp.tasks.sources import HUB, few_shot_source

    source, _ = few_shot_source(args.data_dir, args.seed_split)
    if source.get("data_dir") and not (Path(source["data_dir"]) / name).is_dir():
        source, _ = few_shot_source(HUB, args.seed_split)
    task = get_task(name, **source)
    return rlprompt_cloze(task) if load_lm(args.model, role="task", dtype=EVAL_DTYPE).is_masked_lm else task


def training_cells(args) -> list[dict]:
    """Every (seed, method, task) to train, seed by seed so a first seed of every task finishes first; the
    soft prompt runs for ``--soft-seeds`` only."""
    seeds = {"rlprompt": args.seeds, "soft-prompt": args.soft_seeds}
    return [cell for cell in grid(seed=sorted(set(args.seeds) | set(args.soft_seeds)), method=args.methods,
                                  task=args.tasks) if cell["seed"] in seeds[cell["method"]]]


def make_agent(args, method: str):
    from rlprompt_interp.agents import get_agent

    if method == "rlprompt":  # the defaults, as `train --agent rlprompt` has them, or a recipe's options
        return get_agent("rlprompt", **recipe_options(args.recipe), model=args.model, policy_model=args.policy_model,
                         scorer=args.scorer, quiet=True)
    return get_agent("soft-prompt", model=args.model, batch_size=args.soft_batch_size,
                     eval_every=args.soft_eval_every, quiet=True)


def recipe_options(recipe: str | None) -> dict:
    """The RL agent's options in a shipped recipe (its models, task and run length left to the experiment)."""
    import dataclasses

    from rlprompt_interp.agents.rlprompt import RLPromptConfig
    from rlprompt_interp.config import read_config_file, recipe_path

    if recipe is None:
        return {}
    agent_fields = {f.name for section in dataclasses.fields(RLPromptConfig)
                    for f in dataclasses.fields(section.default_factory)}
    kept = agent_fields - {"model", "policy_model", "scorer", "quiet"}
    return {key: value for key, value in read_config_file(recipe_path(recipe)).items() if key in kept}


def make_cell_runner(args):
    def run_cell(cell: dict, folder: Path) -> dict:
        learned, record = train_cell(make_agent(args, cell["method"]), load_task(args, cell["task"]), folder,
                                     prompt_length=PROMPT_LENGTH, seed=cell["seed"],
                                     steps=args.steps if cell["method"] == "rlprompt" else args.soft_steps)
        print(f"    {learned.text!r} ({record['train_seconds']:.0f} s)", flush=True)
        return {**record, "dev_best": (learned.provenance.get("selection") or {}).get("dev_best")}

    return run_cell


# --------------------------------------------------------------------------- test scores


def prompts_to_score(task_name: str, records: list[dict], lm) -> dict:
    """Every prompt of a task by a stable key: no prompt, the hand template, each run's learned prompt and,
    for RL runs, the prompt the best dev score alone would have kept."""
    from rlprompt_interp.prompts import LearnedPrompt

    prompts = {"no prompt": LearnedPrompt(text="", token_ids=[]),
               "hand": LearnedPrompt.from_text(HAND_TEMPLATES[task_name], lm.tokenizer)}
    for record in records:
        learned = LearnedPrompt.load(record["learned_prompt"])
        prompts[record["learned_prompt"]] = learned
        candidates = {c["text"]: c for c in (learned.provenance.get("selection") or {}).get("candidates", [])}
        if record.get("dev_best") and record["dev_best"] != learned.text:
            ids = candidates.get(record["dev_best"], {}).get("token_ids")
            prompts[record["learned_prompt"] + "#dev-best"] = (
                LearnedPrompt(text=record["dev_best"], token_ids=ids) if ids
                else LearnedPrompt.from_text(record["dev_best"], lm.tokenizer))
    return prompts


def score_task(args, task_name: str, records: list[dict], models: dict, output: Path) -> dict:
    """The task's test scores by prompt key, from ``test/<task>.json``, scoring only the prompts not there yet."""
    return score_prompts(load_task(args, task_name), models["task"], models["scorer"],
                         prompts_to_score(task_name, records, models["task"]), output / "test" / f"{task_name}.json",
                         progress=False, log=lambda line: print(f"  {task_name}: {line}", flush=True))


# --------------------------------------------------------------------------- the table


def balanced(record: dict) -> float:
    """The mean over classes of the per-class test accuracies (NaN in scores written before it was recorded)."""
    return record.get("test_balanced_accuracy", float("nan"))


def task_rows(tasks, records: list[dict], scores: dict) -> list[dict]:
    from rlprompt_interp.prompts import LearnedPrompt

    def minutes(record):  # over every resume of the run, also for records written before the cumulative time
        return training_seconds(LearnedPrompt.load(record["learned_prompt"]), record["train_seconds"]) / 60

    def kept_from(record):  # "dev" (a greedy prompt of a dev evaluation) or "sampled" (a training sample)
        learned = LearnedPrompt.load(record["learned_prompt"])
        candidates = (learned.provenance.get("selection") or {}).get("candidates", [])
        ids = list(learned.token_ids or [])
        return next((c.get("source", "dev") for c in candidates if c["token_ids"] == ids), "dev")

    rows = []
    for task_name in tasks:
        mine = [r for r in records if r["cell"]["task"] == task_name]
        test = scores[task_name]
        row = {"task": task_name, "examples": test["no prompt"]["eval_examples"],
               "no_prompt": test["no prompt"]["test_accuracy"], "hand": test["hand"]["test_accuracy"],
               "hand_balanced": balanced(test["hand"])}
        for method in METHODS:
            runs = sorted((r for r in mine if r["cell"]["method"] == method), key=lambda r: r["cell"]["seed"])
            row[method] = [{"seed": r["cell"]["seed"], "prompt": r["prompt"], "minutes": minutes(r),
                            "kept_from": kept_from(r),
                            **{k: test[r["learned_prompt"]][k] for k in ("test_accuracy", "prompt_perplexity")},
                            "test_balanced_accuracy": balanced(test[r["learned_prompt"]]),
                            "dev_best_accuracy": test.get(r["learned_prompt"] + "#dev-best",
                                                          test[r["learned_prompt"]])["test_accuracy"]}
                           for r in runs]
        rows.append(row)
    return rows


def results_table(rows: list[dict]) -> str:
    def stat(runs, key):
        mean, std, n = mean_std([run[key] for run in runs])
        return "-" if not n else f"{mean:.3f}" if n == 1 else format_mean_std(mean, std)

    columns = [
        column("task"), column("examples", "test sentences"),
        column("no_prompt", "no prompt", "{:.3f}".format), column("hand", "hand template", "{:.3f}".format),
        ("soft prompt, 5 tokens", lambda r: stat(r["soft-prompt"], "test_accuracy")),
        ("soft seeds", lambda r: len(r["soft-prompt"])),
        ("rlprompt defaults", lambda r: stat(r["rlprompt"], "test_accuracy")),
        ("rlprompt, best dev prompt alone", lambda r: stat(r["rlprompt"], "dev_best_accuracy")),
        column("hand_balanced", "hand, balanced", "{:.3f}".format),
        ("rlprompt, balanced", lambda r: stat(r["rlprompt"], "test_balanced_accuracy")),
        ("rlprompt seeds", lambda r: len(r["rlprompt"])),
        ("minutes a run (rlprompt)", lambda r: stat(r["rlprompt"], "minutes")),
    ]
    return markdown_table(rows, columns)


def prompts_table(rows: list[dict]) -> str:
    """One line per RL run (a task's seeds)."""
    runs = [{"task": row["task"], **run} for row in rows for run in row["rlprompt"]]
    return markdown_table(runs, [
        column("task"), column("seed"), column("prompt", "learned prompt", repr), column("kept_from", "kept from"),
        column("test_accuracy", "test accuracy", "{:.4f}".format),
        column("dev_best_accuracy", "best dev prompt alone", "{:.4f}".format),
        column("prompt_perplexity", "perplexity", format_number), column("minutes", fmt="{:.1f}".format)])


def main(argv=None) -> int:
    from rlprompt_interp.models import EVAL_DTYPE, load_lm
    from rlprompt_interp.tasks.sources import few_shot_source

    args = parse_args(argv)
    output = Path(args.output)
    source, where = few_shot_source(args.data_dir, args.seed_split)
    args.data_dir = source["data_dir"] or "hub"  # auto resolved, as the settings record it
    print(f"data: {where}", flush=True)
    cells = training_cells(args)
    print(f"{args.mode} mode: {len(cells)} training runs ({', '.join(args.methods)}) on {', '.join(args.tasks)}, "
          f"seeds {args.seeds} (soft prompt {args.soft_seeds}); model {args.model}, policy "
          f"{args.policy_model or args.model}, scorer {args.scorer}, recipe {args.recipe}", flush=True)
    started = time.time()
    records = run_cells(args, cells, make_cell_runner(args))
    if records is None:
        return 0
    models = {"task": load_lm(args.model, role="task", dtype=EVAL_DTYPE),
              "scorer": load_lm(args.scorer, role="scorer", dtype=EVAL_DTYPE)}
    scores = {name: score_task(args, name, [r for r in records if r["cell"]["task"] == name], models, output)
              for name in args.tasks}
    rows = task_rows(args.tasks, records, scores)
    table, prompts = results_table(rows), prompts_table(rows)
    write_results(output, {"settings": vars(args), "records": records, "rows": rows,
                           "wall_seconds_this_process": time.time() - started},
        markdown_document(
            f"`train --agent rlprompt` {'recipe ' + args.recipe if args.recipe else 'defaults'} on {len(args.tasks)} "
            f"tasks ({args.mode} mode)",
            f"Model {args.model}, policy {args.policy_model or args.model}, scorer {args.scorer}; 16-shot split "
            f"{args.seed_split}; {PROMPT_LENGTH}-token prompts; rlprompt {args.steps} steps, soft prompt "
            f"{args.soft_steps} steps; hand templates {HAND_TEMPLATES}; test accuracy on the whole test split, fp32.",
            table, prompts), printed=table + "\n\n" + prompts)
    return 0


if __name__ == "__main__":
    run_script(main)
