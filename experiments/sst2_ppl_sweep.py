"""RLPrompt on SST-2: accuracy against prompt perplexity (Figure 3 of "Towards Interpretable Soft Prompts").

Every *arm* is a reward and a policy: soft Q-learning learns a discrete prompt against

    acc · ClassificationReward(task LM)  +  ppl · Perplexity(scorer)  +  log_ppl · LogPerplexity(scorer)

(``Perplexity`` = minus the perplexity, the paper's term; ``LogPerplexity`` = minus its log), with
the policy optionally starting from its frozen LM (``prior`` = beta of the LM prior, a per-token KL
penalty towards the LM) or restricted to the LM's top-k next tokens (``fluent``). Arms are written
``acc=1,ppl=0.01`` / ``acc=1,log-ppl=2`` / ``acc=1,prior=1`` / ``acc=1,fluent=20``. Each arm runs
for every prompt length and seed; each learned prompt is scored on the test split by the task LM
and its perplexity is measured under the scorer. No prompt and hand-written prompts are scored the
same way, under the sweep's task definition and under the task's built-in one.

    python experiments/sst2_ppl_sweep.py --quick   # embedded SmolLM2-135M for every role, CPU
    python experiments/sst2_ppl_sweep.py --full    # the paper: distilgpt2 policy and task LM, gpt2-xl scorer
    accelerate launch experiments/sst2_ppl_sweep.py --full   # cells spread over the launched processes

Writes to ``--output``: ``results.json`` (settings, references, every cell's record with prompt,
accuracy, perplexity and dev curve, the summary), ``results.md`` (one row per arm and length, mean ±
std over seeds, next to the paper's numbers) and ``sst2_ppl_sweep.png`` (test accuracy against prompt
perplexity, every seed a point, the Pareto front marked). Every cell trains in its own folder;
running the script again skips finished cells and resumes a killed one from its checkpoint.
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

ARM_KEYS = ("acc", "ppl", "log_ppl", "prior", "fluent", "scale")  # what an arm sets (0 = off / the mode's default)
TASK_CONDITION = "Classify the sentiment of this movie review as positive or negative."

MODES = {
    # The embedded model in every role, on a CPU. Verbalizers " negative"/" positive" suit SmolLM2 (no prompt
    # 0.605 on the whole test set against 0.500 with " terrible"/" great"); the policy writes after a task
    # description, whole words and punctuation only, never repeating a token. The LM prior needs its rewards
    # scaled up (z-score x 20 instead of RLPrompt's x 5) to move away from the LM within 100 steps; the fluent
    # arm keeps x 5 (x 20 freezes it on its first good prompt).
    "quick": dict(policy_model="smollm2-135m", task_model="smollm2-135m", scorer="smollm2-135m", steps=100,
                  seeds=[0, 1, 2], lengths=[5], prompts_per_step=8, examples_per_step=16, lr=1e-3, eval_every=10,
                  eval_limit=0, verbalizers=[" negative", " positive"], condition=TASK_CONDITION,
                  action_space="words+punctuation", no_repeat=4, reward_scale=20.0,
                  arms=["acc=1,prior=1", "acc=1,prior=1,log-ppl=5", "acc=1,prior=1,ppl=0.01", "acc=1,fluent=20,scale=5"]),
    # The paper's models, grid and RLPrompt's few-shot classification budget (a GPU is advised), plus the
    # fluent and LM-prior arms.
    "full": dict(policy_model="distilgpt2", task_model="distilgpt2", scorer="gpt2-xl", steps=12000,
                 seeds=[0, 1, 2], lengths=[5, 15], prompts_per_step=16, examples_per_step=16, lr=5e-5,
                 eval_every=50, eval_limit=0, verbalizers=None, condition=None, action_space="all", no_repeat=0,
                 reward_scale=5.0, arms=["acc=1", "acc=1,ppl=0.01", "ppl=1", "acc=1,fluent=20", "acc=1,prior=1"]),
}
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
    """``"acc=1,log-ppl=2"`` -> ``{"acc": 1.0, "ppl": 0.0, "log_ppl": 2.0, "prior": 0.0, "fluent": 0}``."""
    arm = {key: 0.0 for key in ARM_KEYS}
    arm["fluent"] = 0
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        key = name.strip().replace("-", "_")
        if key not in arm or not sep:
            raise argparse.ArgumentTypeError(f"bad arm term {item!r} in {text!r}; write e.g. acc=1,ppl=0.01 with "
                                             f"names {[k.replace('_', '-') for k in ARM_KEYS]}")
        try:
            arm[key] = int(value) if key == "fluent" else float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"the value of {name!r} in {text!r} is not a number") from None
        if arm[key] < 0:
            raise argparse.ArgumentTypeError(f"arm values must be >= 0; got {item!r}")
    if arm["acc"] == arm["ppl"] == arm["log_ppl"] == 0:
        raise argparse.ArgumentTypeError(f"arm {text!r} has no reward term (acc, ppl or log-ppl)")
    return arm


def arm_label(arm: dict) -> str:
    """A short human label: ``acc + 0.01 ppl``, ``acc, LM prior 1``, ``acc, fluent top-20``."""
    reward = " + ".join(f"{'' if v == 1 else f'{v:g} '}{name}" for name, v in
                        (("acc", arm["acc"]), ("ppl", arm["ppl"]), ("log-ppl", arm["log_ppl"])) if v)
    policy = [f"LM prior {arm['prior']:g}" if arm["prior"] else "", f"fluent top-{arm['fluent']}" if arm["fluent"] else "",
              f"reward scale {arm['scale']:g}" if arm.get("scale") else ""]
    return ", ".join([reward] + [p for p in policy if p])


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_mode_arguments(parser, {"quick": "embedded model, CPU budget", "full": "the paper's models and budget"})
    parser.add_argument("--arms", type=parse_arm, nargs="+", metavar="ARM",
                        help=f"reward and policy of each arm (quick: {' '.join(MODES['quick']['arms'])}; full: "
                             f"{' '.join(MODES['full']['arms'])})")
    parser.add_argument("--lengths", type=int, nargs="+", help="prompt lengths (quick: 5, full: 5 15)")
    parser.add_argument("--seeds", type=int, nargs="+", help="training seeds (0 1 2)")
    parser.add_argument("--verbalizers", nargs="+", help="the task definition's verbalizers (quick: ' negative' "
                                                          "' positive', full: the task's own ' terrible' ' great')")
    parser.add_argument("--condition", help=f"the text the policy writes after (quick: {TASK_CONDITION!r}, full: BOS)")
    parser.add_argument("--action-space", choices=["all", "words", "words+punctuation"],
                        help="tokens the policy may write (quick: words+punctuation, full: all)")
    parser.add_argument("--no-repeat", type=int, help="ban repeating any of the previous K tokens (quick: 4, full: 0)")
    parser.add_argument("--init-prompt", help="warm start every cell from this prompt (default: none)")
    parser.add_argument("--reward-scale", type=float, help="z-scored rewards times this (RLPrompt: 5; an arm's scale= "
                                                            "overrides it)")
    parser.add_argument("--data-dir", default="auto",
                        help="RLPrompt's few-shot folder, or hub (the same K-shot split drawn from the hub's SST-2); "
                             "auto: ../shared/data/few-shot when it exists, else the hub")
    parser.add_argument("--seed-split", default="16-42", help="which few-shot split")
    parser.add_argument("--output", help="output folder (default: runs/sst2-ppl-sweep-<mode>)")
    parser.add_argument("--threads", type=int, help="torch threads (1 on a shared machine)")
    add_report_to_argument(parser)
    for key in ("policy_model", "task_model", "scorer", "steps", "prompts_per_step", "examples_per_step", "lr",
                "eval_every", "eval_limit"):
        quick, full = MODES["quick"][key], MODES["full"][key]
        kind = float if isinstance(quick, float) else int if isinstance(quick, int) else str
        parser.add_argument("--" + key.replace("_", "-"), type=kind, default=None,
                            help=f"(quick: {quick}, full: {full})" + (" (0: the whole split)" if key == "eval_limit"
                                                                       else ""))
    args = parser.parse_args(argv)
    explicit_arms = args.arms
    args = apply_mode(args, MODES)
    if explicit_arms is None:
        args.arms = [parse_arm(text) for text in args.arms]
    if args.output is None:
        args.output = str(ROOT / "runs" / f"sst2-ppl-sweep-{args.mode}")
    return args


def build_cells(args) -> list[dict]:
    return [dict(length=length, **arm, seed=seed) for length in args.lengths for arm in args.arms
            for seed in args.seeds]


def reward_spec(cell: dict) -> str:
    terms = [(name, cell[key]) for name, key in (("gap", "acc"), ("perplexity", "ppl"),
                                                  ("log-perplexity", "log_ppl")) if cell[key]]
    return ",".join(f"{name}={value:g}" for name, value in terms)


def sweep_config(args) -> dict:
    """Everything the cells share; resuming with other values is refused."""
    keys = ("mode", "policy_model", "task_model", "scorer", "steps", "prompts_per_step", "examples_per_step", "lr",
            "eval_every", "eval_limit", "verbalizers", "condition", "action_space", "no_repeat", "init_prompt",
            "reward_scale",
            "data_dir", "seed_split")
    return {key: getattr(args, key) for key in keys}


def make_cell_runner(args, task, models: dict):
    from rlprompt_interp.agents.rlprompt import RLPromptAgent

    def run_cell(cell: dict, folder: Path) -> dict:
        agent = RLPromptAgent(model=args.task_model, policy_model=args.policy_model, scorer=args.scorer,
                              reward=reward_spec(cell), prompts_per_step=args.prompts_per_step,
                              examples_per_step=args.examples_per_step, lr=args.lr, fluent_top_k=cell["fluent"] or None,
                              prior_weight=cell["prior"], condition=args.condition, action_space=args.action_space,
                              no_repeat=args.no_repeat, init_prompt=args.init_prompt, eval_every=args.eval_every,
                              shaped_range=(0.0, cell.get("scale") or args.reward_scale), quiet=True)
        record = train_and_evaluate(agent, task, folder, prompt_length=cell["length"], steps=args.steps,
                                    seed=cell["seed"], eval_lm=models["task"], scorer=models["scorer"],
                                    eval_limit=args.eval_limit or None, report_to=args.report_to,
                                    config={**sweep_config(args), **cell})
        print(f"    {record['prompt']!r}: test accuracy {record['test_accuracy']:.4f}, "
              f"perplexity {format_number(record['prompt_perplexity'])}, {record['train_seconds']:.0f} s training",
              flush=True)
        return record

    return run_cell


def references(args, tasks: dict, models: dict, output: Path) -> dict:
    """Test accuracy of no prompt and of hand-written prompts under each task definition, and their perplexity
    (computed once, kept in the output folder)."""
    import json

    from rlprompt_interp.evaluation import evaluate_prompt
    from rlprompt_interp.perplexity import perplexity
    from rlprompt_interp.prompts import LearnedPrompt

    path = output / "references.json"
    if path.is_file():
        return json.loads(path.read_text())
    lm = models["task"]
    result = {}
    for name, task in tasks.items():
        rows = []
        for text in [""] + HAND_PROMPTS:
            prompt = LearnedPrompt(text=text, token_ids=lm.tokenizer.encode(text, add_special_tokens=False))
            report = evaluate_prompt(task, lm, prompt, split="test", limit=args.eval_limit or None, progress=False)
            ppl = float(perplexity(models["scorer"], [text])[0]) if text.strip() else None
            rows.append({"prompt": text, "test_accuracy": report.accuracy, "eval_examples": report.num_examples,
                         "predicted_fraction": report.predicted_fraction, "prompt_perplexity": ppl})
        result[name] = {"verbalizers": list(task.verbalizers), "template": task.template.text, "prompts": rows}
    write_json_atomic(path, result)
    return result


def summary_rows(records: list[dict]) -> list[dict]:
    for record in records:
        ppl = record.get("prompt_perplexity")
        record["log_perplexity"] = math.log(ppl) if ppl else None
    rows = summarize(records, by=["length", *ARM_KEYS], metrics=["test_accuracy", "log_perplexity"])
    for row in rows:
        plain = not row["prior"] and not row["fluent"] and not row["log_ppl"]
        row["paper"] = PAPER.get((row["length"], row["ppl"], row["acc"])) if plain else None
    return rows


def tradeoffs(rows: list[dict]) -> list[str]:
    """Each arm against the accuracy-only arm of the same length and policy: accuracy change and
    perplexity ratio (geometric means over seeds)."""
    lines = []
    for row in rows:
        if row["ppl"] == row["log_ppl"] == 0:
            continue
        base = next((r for r in rows if r["length"] == row["length"] and r["prior"] == row["prior"]
                     and r["fluent"] == row["fluent"] and r["ppl"] == r["log_ppl"] == 0 and r["acc"] > 0), None)
        if base is None or math.isnan(row["log_perplexity_mean"]) or math.isnan(base["log_perplexity_mean"]):
            continue
        ratio = math.exp(base["log_perplexity_mean"] - row["log_perplexity_mean"])
        change = (row["test_accuracy_mean"] - base["test_accuracy_mean"]) * 100
        lines.append(f"L={row['length']} {arm_label(row)} vs {arm_label(base)}: perplexity {ratio:.1f}x lower, "
                     f"accuracy {change:+.1f} points")
    return lines


def results_table(rows: list[dict], refs: dict) -> str:
    def sample(row):
        best = max(row["records"], key=lambda r: r["test_accuracy"])
        return repr(best["prompt"])

    columns = [
        ("prompt length", lambda r: r["length"]),
        ("arm", arm_label),
        ("test accuracy (mean ± std)", lambda r: format_mean_std(r["test_accuracy_mean"], r["test_accuracy_std"])),
        ("prompt perplexity (geometric mean)", lambda r: format_number(math.exp(r["log_perplexity_mean"]))
         if not math.isnan(r["log_perplexity_mean"]) else "-"),
        ("seeds", lambda r: r["n"]),
        ("sample prompt (best seed)", sample),
        ("paper accuracy", lambda r: f"{r['paper'][0]:.2f}" if r["paper"] else "-"),
        ("paper sample prompt", lambda r: r["paper"][1] if r["paper"] else "-"),
    ]
    lines = [markdown_table(rows, columns), "", "References (same test examples, same slot):", ""]
    for name, ref in refs.items():
        cells = ", ".join(f"{row['prompt']!r} {row['test_accuracy']:.4f}" for row in ref["prompts"])
        lines.append(f"- {name} (verbalizers {ref['verbalizers']}, {ref['prompts'][0]['eval_examples']} examples): "
                     f"{cells}")
    return "\n".join(lines)


def plot(records: list[dict], path: Path) -> Path:
    points = [(r["prompt_perplexity"], r["test_accuracy"]) for r in records]
    labels = [f"L={r['cell']['length']} s{r['cell']['seed']}" for r in records]
    groups = [arm_label(r["cell"]) for r in records]
    return plot_tradeoff(points, labels, path, xlabel="prompt perplexity under the scorer (log scale)",
                         ylabel="SST-2 test accuracy", title="RLPrompt on SST-2: accuracy vs perplexity", groups=groups)


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
    print(f"data: {where}", flush=True)
    builtin = get_task("sst-2", **source)
    task = builtin.with_options(verbalizers=args.verbalizers) if args.verbalizers else builtin
    models = {"task": load_lm(args.task_model, role="task"), "scorer": load_lm(args.scorer, role="scorer")}
    cells = build_cells(args)
    print(f"{args.mode} mode: {len(cells)} cells; policy {args.policy_model}, task LM {args.task_model}, scorer "
          f"{args.scorer}; verbalizers {list(task.verbalizers)}; {args.steps} steps x {args.prompts_per_step} prompts "
          f"x {args.examples_per_step} examples", flush=True)
    sweep = Sweep(output, cells, make_cell_runner(args, task, models), config=sweep_config(args))
    records = sweep.run()
    if not process_state().is_main_process:
        return 0
    tasks = {"this sweep's task definition": task}
    if tuple(builtin.verbalizers) != tuple(task.verbalizers):
        tasks["the built-in definition"] = builtin
    refs = references(args, tasks, models, output)
    rows = summary_rows(records)
    table = results_table(rows, refs)
    notes = tradeoffs(rows)
    write_json_atomic(output / "results.json", {
        "settings": {k: v for k, v in vars(args).items()}, "references": refs, "records": records,
        "tradeoffs": notes, "summary": [{k: v for k, v in row.items() if k != "records"} for row in rows]})
    examples = refs["this sweep's task definition"]["prompts"][0]["eval_examples"]
    (output / "results.md").write_text(
        f"# SST-2: RLPrompt accuracy vs prompt perplexity ({args.mode} mode)\n\n"
        f"Policy {args.policy_model}, task LM {args.task_model}, scorer {args.scorer}; template "
        f"{task.template.text!r}, verbalizers {list(task.verbalizers)}; {args.steps} steps, {args.prompts_per_step} "
        f"prompts x {args.examples_per_step} examples per step, lr {args.lr:g}; policy: condition {args.condition!r}, "
        f"action space {args.action_space}, no repeat of the last {args.no_repeat} tokens; test accuracy on "
        f"{examples} test examples. The paper's columns: distilgpt2 task LM, GPT2-XL scorer, ' terrible'/' great'.\n\n"
        + table + "\n\n" + "\n".join(f"- {line}" for line in notes) + "\n")
    plot(records, output / "sst2_ppl_sweep.png")
    print(table)
    print("\n".join(notes))
    print(f"written: {output / 'results.json'}, {output / 'results.md'}, {output / 'sst2_ppl_sweep.png'}")
    return 0


if __name__ == "__main__":
    from rlprompt_interp.cli import run_reporting_errors

    sys.exit(run_reporting_errors(main))
