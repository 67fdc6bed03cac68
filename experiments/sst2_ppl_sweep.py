"""RLPrompt on SST-2: accuracy against prompt perplexity (Figure 3 of "Towards Interpretable Soft Prompts").

Every *arm* is a reward and a policy: soft Q-learning learns a discrete prompt against

    gap · TaskGapReward(task LM)  +  perplexity · Perplexity(scorer)  +  log-perplexity · LogPerplexity(scorer)

(``Perplexity`` = minus the perplexity, the paper's term; ``LogPerplexity`` = minus its log), with
the policy optionally starting from its frozen LM (``prior_weight`` = beta of the LM prior, a per-token
KL penalty towards the LM; 0, the sweep's own: a uniform start), restricted to the LM's top-k next tokens
(``fluent_top_k``) or regularised by PIN's sparse Tsallis entropy instead of Shannon's
(``entropy=tsallis``). An arm is ``train`` options by their field names, ``OPTION=VALUE`` separated by
spaces: ``reward=gap=1,perplexity=0.01`` / ``reward=gap=1,log-perplexity=2 prior_weight=1`` /
``reward=gap=1 fluent_top_k=20`` / ``reward=gap=1 prior_weight=1 entropy=tsallis`` /
``reward=gap=1 shaped_range=[0,4]`` (the older ``acc=1,ppl=0.01,prior=1`` spelling still reads, with a
warning). Each arm runs for every prompt length and seed. Once every run is done,
the main process scores all learned prompts, no prompt and the hand-written prompts on the test split
in one pass (each test sentence is encoded once for all of them; ``test/`` keeps the scores by token
ids, so a prompt is scored once) and measures each prompt's perplexity under the scorer; the references
are also scored under the task's built-in definition when the sweep's differs.

Every arm is compared with the accuracy-only arm of its prompt length (``accuracy_only``: ``reward=gap=1``
when the sweep runs it): the difference in mean test accuracy and the ratio of geometric-mean
perplexities, with 95% intervals from a bootstrap over test sentences (paired: the same sentences
for both arms) and each arm's seeds (``sweep_report.paired_bootstrap``).

    python experiments/sst2_ppl_sweep.py --quick   # embedded SmolLM2-135M for every role, CPU
    python experiments/sst2_ppl_sweep.py --full    # the paper: distilgpt2 policy and task LM, gpt2-xl scorer
    accelerate launch experiments/sst2_ppl_sweep.py --full   # cells spread over the launched processes

Writes to ``--output``: ``results.json`` (settings, references, every cell's record with prompt,
accuracy, which test sentences it got right, perplexity and dev curve, the summary with the intervals),
``results.md`` (one row per arm and length, mean ± std over seeds and the intervals, next to the paper's
numbers) and ``sst2_ppl_sweep.png`` (mean test accuracy against geometric-mean prompt perplexity, one
point per arm and length with its 95% intervals as error bars, the Pareto front marked). Every cell
trains in its own folder; running the script again skips finished cells and resumes a killed one from
its checkpoint.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import yaml

from rlprompt_interp.experiment import (experiment_parser, markdown_document, parse_experiment_args, run_cells,
                                        run_script, write_results)
from rlprompt_interp.notices import warn
from rlprompt_interp.policies import ACTION_SPACES
from rlprompt_interp.sweep_report import (ACCURACY_COLUMN, BOOTSTRAP_DRAWS, PERPLEXITY_COLUMN, SAMPLE_COLUMN,
                                          SEEDS_COLUMN, arm_bootstrap, column, format_interval, format_number,
                                          markdown_table, paired_bootstrap, plot_tradeoff, seed_arrays,
                                          summarize_with_log_perplexity, without_records)
from rlprompt_interp.sweeps import add_data_arguments, task_and_models, train_cell

# what an arm sets, as its cell records it (0 = off / the mode's default); the cells' folders are named by them
ARM_KEYS = ("acc", "ppl", "log_ppl", "prior", "fluent", "scale", "tsallis")
# the train options an arm may set (RLPromptConfig field names) -> how the cell records each
ARM_OPTIONS = ("reward", "prior_weight", "fluent_top_k", "shaped_range", "entropy")
REWARD_TERMS = {"gap": "acc", "perplexity": "ppl", "log-perplexity": "log_ppl"}

PAPER = {  # (length, ppl, acc) -> (accuracy, sample prompt); distilgpt2 task LM, GPT2-XL scorer
    (5, 0.0, 1.0): (0.81, "Role Owner Media Widget profoundly"),
    (5, 0.01, 1.0): (0.71, "Buffer Response Pattern Cache absolutely"),
    (5, 1.0, 0.0): (0.50, "Site Style Set Style :"),
    (15, 0.0, 1.0): (0.78, "Platform Offline Remote Student Station ..."),
    (15, 0.01, 1.0): (0.69, "Site Site Site Manager Manager ..."),
    (15, 1.0, 0.0): (0.50, "Options Info Info Info ..."),
}
HAND_PROMPTS = [" Sentiment:", " The movie was"]


def parse_arm(text: str) -> dict:
    """An arm's ``train`` options, ``"reward=gap=1,log-perplexity=2 prior_weight=1"``, checked as ``train`` checks
    them, as its cell's record: ``{"acc": 1.0, "ppl": 0.0, "log_ppl": 2.0, "prior": 1.0, "fluent": 0,
    "scale": 0.0, "tsallis": 0}``."""
    from rlprompt_interp.agents.rlprompt import RLPromptConfig, parse_reward_spec
    from rlprompt_interp.config import ConfigError

    if text and all(item.partition("=")[0].strip().replace("-", "_") in ARM_KEYS for item in text.split(",")):
        return parse_old_arm(text)
    options = {}
    for item in text.split():
        name, sep, value = item.partition("=")
        key = name.replace("-", "_")
        if key not in ARM_OPTIONS or not sep:
            raise argparse.ArgumentTypeError(f"bad arm term {item!r} in {text!r}; an arm sets OPTION=VALUE items, "
                                             f"separated by spaces, among {list(ARM_OPTIONS)}")
        options[key] = value if key in ("reward", "entropy") else yaml.safe_load(value)
    try:
        config = RLPromptConfig.of(**options)  # the values train would accept
        terms = dict(parse_reward_spec(config.reward.reward, quiet=True))
    except (ConfigError, ValueError, TypeError) as error:
        raise argparse.ArgumentTypeError(f"arm {text!r}: {error}") from None
    if "reward" not in options or not terms:
        raise argparse.ArgumentTypeError(f"arm {text!r} has no reward term (e.g. reward=gap=1)")
    arm = {key: terms.get(name, 0.0) for name, key in REWARD_TERMS.items()}
    arm.update(prior=float(options.get("prior_weight", 0.0)), fluent=int(options.get("fluent_top_k") or 0),
               scale=float(config.shaped_range[1]) if "shaped_range" in options else 0.0,
               tsallis=int(config.entropy == "tsallis"))
    return arm


def parse_old_arm(text: str) -> dict:
    """The older arm spelling, ``acc=1,ppl=0.01,prior=1,fluent=20,scale=4,tsallis=1`` (with a warning)."""
    old = dict(item.strip().partition("=")[::2] for item in text.split(","))
    if old.get("tsallis", "0") not in ("0", "1"):
        raise argparse.ArgumentTypeError(f"tsallis is on (1) or off (0); got {text!r}")
    names = {"acc": "gap", "ppl": "perplexity", "log_ppl": "log-perplexity"}
    reward = ",".join(f"{names[key.replace('-', '_')]}={value}" for key, value in old.items()
                      if key.replace("-", "_") in names)
    options = {"prior": "prior_weight", "fluent": "fluent_top_k"}
    new = [f"reward={reward}"] if reward else []
    new += [f"{options[key]}={value}" for key, value in old.items() if key in options]
    new += [f"shaped_range=[0,{old['scale']}]"] if "scale" in old else []
    new += [f"entropy={'tsallis' if old['tsallis'] == '1' else 'shannon'}"] if "tsallis" in old else []
    warn(f"the arm spelling {text!r} is deprecated; write {' '.join(new)!r} (train's option names)")
    return parse_arm(" ".join(new))


def arm_label(arm: dict) -> str:
    """A short human label: ``gap + 0.01 ppl``, ``gap, LM prior 1``, ``gap, fluent top-20``,
    ``gap, LM prior 1, Tsallis``."""
    reward = " + ".join(f"{'' if v == 1 else f'{v:g} '}{name}" for name, v in
                        (("gap", arm["acc"]), ("ppl", arm["ppl"]), ("log-ppl", arm["log_ppl"])) if v)
    policy = [f"LM prior {arm['prior']:g}" if arm["prior"] else "", f"fluent top-{arm['fluent']}" if arm["fluent"] else "",
              f"reward scale {arm['scale']:g}" if arm.get("scale") else "", "Tsallis" if arm.get("tsallis") else ""]
    return ", ".join([reward] + [p for p in policy if p])


def checked_arm(text: str) -> str:
    parse_arm(text)  # a bad arm is a usage error
    return text


def parse_args(argv=None) -> argparse.Namespace:
    # everything the cells share (resuming with other values is refused) but the grid's axes
    parser = experiment_parser(__doc__, __file__, options={"arms": dict(type=checked_arm, metavar="ARM"),
                                                           "action_space": dict(choices=ACTION_SPACES)},
                               axes=("seeds", "lengths", "arms"), shared=("init_prompt", "data_dir", "seed_split"))
    parser.add_argument("--init-prompt", help="warm start every cell from this prompt (default: none)")
    add_data_arguments(parser)
    args = parse_experiment_args(parser, argv)
    args.arms = [parse_arm(text) for text in args.arms]
    return args


def build_cells(args) -> list[dict]:
    return [dict(length=length, **arm, seed=seed) for length in args.lengths for arm in args.arms
            for seed in args.seeds]


def reward_spec(cell: dict) -> str:
    terms = [(name, cell[key]) for name, key in (("gap", "acc"), ("perplexity", "ppl"),
                                                  ("log-perplexity", "log_ppl")) if cell[key]]
    return ",".join(f"{name}={value:g}" for name, value in terms)


def make_cell_runner(args, task):
    from rlprompt_interp.agents.rlprompt import RLPromptAgent

    def run_cell(cell: dict, folder: Path) -> dict:
        agent = RLPromptAgent(model=args.task_model, policy_model=args.policy_model, scorer=args.scorer,
                              reward=reward_spec(cell), prompts_per_step=args.prompts_per_step,
                              examples_per_step=args.examples_per_step, lr=args.lr, fluent_top_k=cell["fluent"] or None,
                              prior_weight=cell["prior"], entropy="tsallis" if cell["tsallis"] else "shannon",
                              condition=args.condition, action_space=args.action_space,
                              no_repeat=args.no_repeat, init_prompt=args.init_prompt, eval_every=args.eval_every,
                              shaped_range=(0.0, cell.get("scale") or args.reward_scale),
                              # RESULTS' sweep was measured before these two defaults (dev prompts alone re-scored,
                              # the plain mean gap); kept so that its command still gives its figures
                              rescore_samples=0, balance_classes=False, quiet=True)
        _, record = train_cell(agent, task, folder, prompt_length=cell["length"], steps=args.steps, seed=cell["seed"],
                               report_to=args.report_to, config={**args.settings(), **cell})
        print(f"    {record['prompt']!r} ({record['train_seconds']:.0f} s training)", flush=True)
        return record

    return run_cell


def test_scores(args, tasks: dict, records: list[dict], models: dict, output: Path) -> tuple[list[dict], dict]:
    """Score every cell's learned prompt, no prompt and the hand-written prompts on the test split, under the
    sweep's task definition (the references also under the task's built-in one), all prompts of a definition in
    one pass over the test sentences. Scores are kept by token ids in ``test/definition<i>.json``, so a prompt
    is scored once however many cells learn it and however often the script runs. Returns the records with
    their test figures added and the references (``{definition: {verbalizers, template, prompts: [{prompt,
    test_accuracy, ...}]}}``)."""
    from rlprompt_interp.prompts import LearnedPrompt
    from rlprompt_interp.sweeps import score_prompts

    def key(prompt) -> str:
        return json.dumps(list(prompt.token_ids))

    lm, limit = models["task"], args.eval_limit or None
    hand = [LearnedPrompt.from_text(text, lm.tokenizer) for text in [""] + HAND_PROMPTS]
    learned = [LearnedPrompt(text=r["prompt"], token_ids=r["token_ids"]) for r in records]
    refs, scored = {}, records
    for number, (name, task) in enumerate(tasks.items()):
        prompts = {key(p): p for p in hand + (learned if number == 0 else [])}
        scores = score_prompts(task, lm, models["scorer"], prompts, output / "test" / f"definition{number}.json",
                               limit=limit, log=lambda line: print(f"{name}: {line}", flush=True))
        refs[name] = {"verbalizers": list(task.verbalizers), "template": task.template.text,
                      "prompts": [{"prompt": p.text, **scores[key(p)]} for p in hand]}
        if number == 0:
            scored = [{**r, **scores[key(p)]} for r, p in zip(records, learned)]
    return scored, refs


def summary_rows(records: list[dict]) -> list[dict]:
    """One row per arm and length: mean ± std over seeds, the paper's numbers, the arm's 95% intervals
    (``intervals``: mean accuracy, geometric-mean perplexity) and its comparison with the accuracy-only arm
    (``accuracy_only_arm``, its label; ``is_accuracy_only``; ``vs_accuracy_only``: accuracy difference in
    points and perplexity ratio, None for that arm itself). Cells without per-sentence results (``test_correct``)
    get no intervals."""
    rows = summarize_with_log_perplexity(records, by=["length", *ARM_KEYS])
    arrays = {id(row): seed_arrays(row["records"]) for row in rows}
    for row in rows:
        plain = not row["prior"] and not row["fluent"] and not row["log_ppl"] and not row["tsallis"]
        row["paper"] = PAPER.get((row["length"], row["ppl"], row["acc"])) if plain else None
        correct, log_ppl = arrays[id(row)]
        row["intervals"] = arm_bootstrap(correct, log_ppl) if correct is not None else None
        base = accuracy_only(row, rows)
        base_correct, base_log_ppl = arrays[id(base)] if base is not None else (None, None)
        row["accuracy_only_arm"], row["is_accuracy_only"] = arm_label(base) if base is not None else None, base is row
        row["vs_accuracy_only"] = (paired_bootstrap(correct, log_ppl, base_correct, base_log_ppl)
                                   if base is not row and correct is not None and base_correct is not None else None)
    return rows


def accuracy_only(row: dict, rows: list[dict]) -> dict | None:
    """The arm ``row`` is compared with: accuracy as the only reward term, Shannon entropy, the same prompt
    length, and the least readability pressure on the policy the sweep ran: no LM prior and no top-k
    restriction (``reward=gap=1``, a uniform start) when present, else the smallest prior (the
    comparisons then measure the reward terms on top of the prior), then no fluent restriction; ties go to
    the arm with ``row``'s reward scale. None when the sweep has no such arm."""
    candidates = [r for r in rows if r["length"] == row["length"] and r["acc"] > 0
                  and not (r["ppl"] or r["log_ppl"] or r["tsallis"])]
    return min(candidates, default=None,
               key=lambda r: (r["fluent"] != 0, r["prior"], r["fluent"], r["scale"] != row["scale"]))


def points(value: float) -> str:
    return f"{value:+.1f}"


def ratio(value: float) -> str:
    return format_number(value, 2)


def tradeoffs(rows: list[dict]) -> list[str]:
    """Each arm against the accuracy-only arm of its length: accuracy change and perplexity ratio
    (geometric means over seeds), with their 95% bootstrap intervals in brackets."""
    return [f"L={row['length']} {arm_label(row)} vs {row['accuracy_only_arm']}: accuracy "
            f"{format_interval(row['vs_accuracy_only']['accuracy_difference'], points)} points, perplexity ratio "
            f"(accuracy-only / arm) {format_interval(row['vs_accuracy_only']['perplexity_ratio'], ratio)}"
            for row in rows if row["vs_accuracy_only"]]


def accuracy_ci(interval: dict) -> str:
    """``[0.790, 0.833] ±2.2``: the interval and its half-width in points (how well the arm's mean is known)."""
    return f"[{interval['low']:.3f}, {interval['high']:.3f}] ±{50 * (interval['high'] - interval['low']):.1f}"


def comparison(row: dict, name: str, fmt) -> str:
    """A column of the comparison with the accuracy-only arm."""
    if row["vs_accuracy_only"] is None:
        return "baseline" if row["is_accuracy_only"] else "-"
    return format_interval(row["vs_accuracy_only"][name], fmt)


def results_table(rows: list[dict], refs: dict) -> str:
    columns = [
        column("length", "prompt length"),
        ("arm", arm_label),
        ACCURACY_COLUMN,
        ("accuracy 95% CI (± points)", lambda r: accuracy_ci(r["intervals"]["accuracy"]) if r["intervals"] else "-"),
        PERPLEXITY_COLUMN,
        ("Δ accuracy vs accuracy-only (95% CI, points)", lambda r: comparison(r, "accuracy_difference", points)),
        ("perplexity ratio accuracy-only / arm (95% CI)", lambda r: comparison(r, "perplexity_ratio", ratio)),
        SEEDS_COLUMN,
        SAMPLE_COLUMN,
        ("paper accuracy", lambda r: f"{r['paper'][0]:.2f}" if r["paper"] else "-"),
        ("paper sample prompt", lambda r: r["paper"][1] if r["paper"] else "-"),
    ]
    lines = [markdown_table(rows, columns), "", "References (same test examples, same slot):", ""]
    for name, ref in refs.items():
        cells = ", ".join(f"{row['prompt']!r} {row['test_accuracy']:.4f}" for row in ref["prompts"])
        lines.append(f"- {name} (verbalizers {ref['verbalizers']}, {ref['prompts'][0]['eval_examples']} examples): "
                     f"{cells}")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> Path:
    """One point per arm and length: geometric-mean perplexity and mean accuracy over seeds, with their 95%
    bootstrap intervals as error bars."""
    def ends(row, name):
        interval = (row["intervals"] or {}).get(name)
        return (interval["low"], interval["high"]) if interval else None

    return plot_tradeoff([(math.exp(r["log_perplexity_mean"]), r["test_accuracy_mean"]) for r in rows],
                         [f"L={r['length']}" for r in rows], path,
                         xlabel="prompt perplexity under the scorer (geometric mean over seeds, log scale)",
                         ylabel="SST-2 test accuracy (mean over seeds)", groups=[arm_label(r) for r in rows],
                         title="RLPrompt on SST-2: accuracy vs perplexity (95% intervals)",
                         xerr=[ends(r, "perplexity") for r in rows], yerr=[ends(r, "accuracy") for r in rows])


def main(argv=None) -> int:
    args = parse_args(argv)
    output = Path(args.output)
    started = time.time()
    builtin, models = task_and_models(args, "sst-2")
    task = builtin.with_options(verbalizers=args.verbalizers) if args.verbalizers else builtin
    cells = build_cells(args)
    print(f"{args.mode} mode: {len(cells)} cells; policy {args.policy_model}, task LM {args.task_model}, scorer "
          f"{args.scorer}; verbalizers {list(task.verbalizers)}; {args.steps} steps x {args.prompts_per_step} prompts "
          f"x {args.examples_per_step} examples", flush=True)
    records = run_cells(args, cells, make_cell_runner(args, task))
    if records is None:
        return 0
    tasks = {"this sweep's task definition": task}
    if tuple(builtin.verbalizers) != tuple(task.verbalizers):
        tasks["the built-in definition"] = builtin
    records, refs = test_scores(args, tasks, records, models, output)
    rows = summary_rows(records)
    table = results_table(rows, refs)
    notes = tradeoffs(rows)
    examples = refs["this sweep's task definition"]["prompts"][0]["eval_examples"]
    write_results(output, {
        "settings": {k: v for k, v in vars(args).items()}, "references": refs, "records": records,
        "tradeoffs": notes, "summary": without_records(rows),
        "wall_seconds_this_process": time.time() - started}, markdown_document(
        f"SST-2: RLPrompt accuracy vs prompt perplexity ({args.mode} mode)",
        f"Policy {args.policy_model}, task LM {args.task_model}, scorer {args.scorer}; template "
        f"{task.template.text!r}, verbalizers {list(task.verbalizers)}; {args.steps} steps, {args.prompts_per_step} "
        f"prompts x {args.examples_per_step} examples per step, lr {args.lr:g}; policy: condition {args.condition!r}, "
        f"action space {args.action_space}, no repeat of the last {args.no_repeat} tokens; test accuracy on "
        f"{examples} test examples. The paper's columns: distilgpt2 task LM, GPT2-XL scorer, ' terrible'/' great'. "
        f"Intervals: 95% percentile bootstrap ({BOOTSTRAP_DRAWS} draws) over the test sentences (the same draw for "
        f"an arm and its baseline, the accuracy-only arm) and each arm's seeds.",
        table, "\n".join(f"- {line}" for line in notes)),
        printed=table + "\n" + "\n".join(notes), plots={"sst2_ppl_sweep.png": lambda path: plot(rows, path)})
    return 0


if __name__ == "__main__":
    run_script(main)
