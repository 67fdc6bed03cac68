"""Soft prompt vs PEZ on BoolQ: accuracy and prompt perplexity by prompt length
(Figure 2 of "Towards Interpretable Soft Prompts", Patel et al. 2025).

For each prompt length (5, 20, 100 tokens) and seed, a soft prompt (Lester et al.) and a PEZ prompt
(Wen et al.) are trained on BoolQ with a frozen task LM: the prompt goes before
``{passage} Question: {question}? Answer:`` and the answer is read from the " yes"/" no" logits
(at the first decoder step for T5, the next token for a causal LM). The best prompt on dev is
scored on test. Its readable text is the soft prompt's unembedding (nearest vocabulary token per
position, ``metrics.faithfulness.unembedded_prompt``) or PEZ's discrete tokens, and that text's
perplexity under the scorer LM is reported with its log (the paper's figures look like
log-perplexity). References: a hand-written natural prompt of about each length, and no prompt.

Writes ``results.json`` (settings, one record per cell, summary rows), ``results.md`` (the table
next to the paper's figures) and ``boolq_soft_vs_pez.png`` (accuracy and perplexity against
prompt length) to ``--output``, and prints the table.

    python experiments/boolq_soft_vs_pez.py --quick --threads 1   # smollm2-135m on CPU, ~20 min
    python experiments/boolq_soft_vs_pez.py --full                # t5-small, gpt2-xl scorer (GPU)
    accelerate launch experiments/boolq_soft_vs_pez.py --full     # cells spread over the GPUs

Quick mode is not the paper's setting: the embedded SmolLM2-135M (a causal LM) stands in for
T5-small, it also scores perplexity instead of GPT2-XL, the data are FewGLUE's 32 BoolQ examples
(16 train / 8 dev / 8 test) and training is a few steps. Every cell resumes where it stopped when
the script is run again; finished cells are read back.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from rlprompt_interp.experiment import (experiment_parser, markdown_document, parse_experiment_args, run_cells,
                                        run_script, write_results)
from rlprompt_interp.prompts import LearnedPrompt
from rlprompt_interp.sweep_report import (SEEDS_COLUMN, column, format_number, markdown_table, mean_std_column,
                                          saved_figure, summarize, without_records)


SCRIPT = Path(__file__).stem
TRAINED = ("soft-prompt", "pez")
HUB = "hub"  # --data-dir value: read BoolQ from the Hugging Face hub (super_glue/boolq)

# Hand-written instructions of about 5, 20 and 100 tokens; a length uses the nearest one.
NATURAL_PROMPTS = {
    5: "Answer yes or no.",
    20: "Read the passage below, then answer the question after it with a single word: yes or no.",
    100: ("You will read a short passage taken from Wikipedia, followed by a question about it. The question "
          "can always be answered with yes or no. Read the whole passage carefully and find the sentences that "
          "talk about what the question asks. Do not rely on what you already know about the topic; use only the "
          "facts that the passage states. If the passage says that the statement in the question is true, answer "
          "yes. If the passage says that it is false, answer no. Reply with one word only."),
}

# Figure 2 of the paper (T5-small, GPT2-XL). PEZ's 38% is one figure for every length ("same as no
# prompt"); the soft prompt's best, 62%, is given for 20 and 100 tokens only.
PAPER_ACCURACY = {("soft-prompt", 20): 0.62, ("soft-prompt", 100): 0.62, ("pez", 5): 0.38, ("pez", 20): 0.38,
                  ("pez", 100): 0.38, ("no-prompt", 0): 0.38}
PAPER_PERPLEXITY = {("natural", 100): 2.82, ("soft-prompt", 100): 6.12, ("pez", 100): 5.15,
                    ("natural", 20): 2.49, ("soft-prompt", 20): 5.64, ("pez", 20): 6.45,
                    ("natural", 5): 2.60, ("soft-prompt", 5): 6.18, ("pez", 5): 8.09}
METHOD_ORDER = ("soft-prompt", "pez", "natural", "no-prompt")
METRICS = ("test_accuracy", "predicted_yes", "unembedded_test_accuracy", "prompt_perplexity",
           "prompt_log_perplexity")


# --------------------------------------------------------------------------- command line


def parse_args(argv=None) -> argparse.Namespace:
    parser = experiment_parser(
        __doc__, __file__, name=SCRIPT,
        options={"methods": dict(choices=TRAINED), "soft_lr_scale": dict(type=float),
                 "pez_lr_scale": dict(type=float), "eval_limit": dict(type=int), "dev_limit": dict(type=int),
                 "unembed_metric": dict(choices=("euclidean", "cosine", "dot")), "steps": dict(at_least=0),
                 **{key: dict(at_least=1) for key in ("batch_size", "eval_every", "eval_batch_size", "lengths")}},
        axes=("methods", "lengths", "seeds", "eval_batch_size"))
    parser.add_argument("--progress", action="store_true", help="show the agents' training progress bars")
    args = parse_experiment_args(parser, argv)
    args.output = Path(args.output)
    return args


def sweep_config(args: argparse.Namespace) -> dict:
    """Settings every cell shares; a re-run with other values into the same folder is refused."""
    return {"script": SCRIPT, **args.settings(), "natural_prompts": NATURAL_PROMPTS}


def natural_prompt(length: int) -> str:
    """The hand-written prompt whose nominal length is nearest ``length``."""
    return NATURAL_PROMPTS[min(NATURAL_PROMPTS, key=lambda n: (abs(n - length), n))]


def cells(args: argparse.Namespace) -> list[dict]:
    """Trained cells for every (method, length, seed), then the natural prompts and no prompt."""
    from rlprompt_interp.sweeps import grid

    return (grid(method=list(args.methods), length=list(args.lengths), seed=list(args.seeds))
            + grid(method=["natural"], length=list(args.lengths), seed=[0])
            + [{"method": "no-prompt", "length": 0, "seed": 0}])


# --------------------------------------------------------------------------- one cell


def build_agent(args: argparse.Namespace, method: str):
    from rlprompt_interp.agents import get_agent

    options = dict(model=args.model, batch_size=args.batch_size, eval_every=args.eval_every,
                   eval_batch_size=args.eval_batch_size, dev_limit=args.dev_limit, quiet=not args.progress)
    scale = args.soft_lr_scale if method == "soft-prompt" else args.pez_lr_scale
    if scale is not None:
        options["lr_scale"] = scale
    if method == "soft-prompt":  # the soft prompt's logged text is then the same readout as the table's
        options["projection_metric"] = args.unembed_metric
    return get_agent(method, **options)


def readout_figures(scorer, text: str) -> dict:
    """Perplexity and log-perplexity of a prompt text under the scorer (None for an empty text)."""
    from rlprompt_interp.perplexity import log_perplexity

    if not text.strip():
        return {"prompt_perplexity": None, "prompt_log_perplexity": None}
    log_ppl = float(log_perplexity(scorer, [text])[0])
    return {"prompt_perplexity": math.exp(log_ppl), "prompt_log_perplexity": log_ppl}


def make_run_cell(args: argparse.Namespace, task, lm, scorer):
    """``run_cell(cell, folder) -> record`` for the sweep, closed over the loaded task and models."""
    from rlprompt_interp.evaluation import evaluate_prompt
    from rlprompt_interp.metrics.faithfulness import unembedded_prompt
    from rlprompt_interp.sweeps import train_and_evaluate

    def test_report(prompt):
        return evaluate_prompt(task, lm, prompt, split="test", limit=args.eval_limit,
                               batch_size=args.eval_batch_size, progress=False)

    def run_cell(cell: dict, folder: Path) -> dict:
        method = cell["method"]
        if method in ("natural", "no-prompt"):
            text = natural_prompt(cell["length"]) if method == "natural" else ""
            report = test_report(text)
            return {"prompt": text, "readout": text, "test_accuracy": report.accuracy,
                    "eval_examples": report.num_examples, "predicted_yes": report.predicted_fraction["true"],
                    "prompt_tokens": len(lm.tokenizer.encode(text, add_special_tokens=False)),
                    **readout_figures(scorer, text)}
        record = train_and_evaluate(build_agent(args, method), task, folder, prompt_length=cell["length"],
                                    steps=args.steps, seed=cell["seed"], eval_lm=lm, scorer=None,
                                    eval_split="test", eval_limit=args.eval_limit,
                                    eval_batch_size=args.eval_batch_size, report_to=args.report_to,
                                    config={**sweep_config(args), **cell})
        learned = LearnedPrompt.load(record["learned_prompt"])
        readout = learned
        if learned.is_soft:  # f_U(P): the nearest vocabulary token at each position, as text
            readout = unembedded_prompt(learned, lm, metric=args.unembed_metric)
            record["unembedded_test_accuracy"] = test_report(readout).accuracy
        start = next((point for point in learned.curve or [] if point.get("step") == 0 and "prompt" in point), {})
        record.update(predicted_yes=record["predicted_fraction"]["true"], readout=readout.text,
                      readout_token_ids=readout.token_ids, prompt_tokens=cell["length"],
                      initial_readout=start.get("prompt"), **readout_figures(scorer, readout.text))
        record["readout_changed"] = record["initial_readout"] is None or record["initial_readout"] != readout.text
        return record

    return run_cell


# --------------------------------------------------------------------------- report


def summary_rows(records: list[dict]) -> list[dict]:
    """Mean ± std over seeds per (method, length), in the table's order, with the paper's figures."""
    rows = summarize([r for r in records if r is not None], by=["method", "length"], metrics=METRICS)
    for row in rows:
        key = (row["method"], row["length"])
        row["paper_accuracy"] = PAPER_ACCURACY.get(key)
        row["paper_perplexity"] = PAPER_PERPLEXITY.get(key)
        first = min(row["records"], key=lambda r: r["cell"]["seed"])
        row["sample_readout"] = first.get("readout", "")
    rows.sort(key=lambda row: (METHOD_ORDER.index(row["method"]), row["length"]))
    return rows


def table(rows: list[dict]) -> str:
    def sample(text):
        return repr(text if len(text) <= 80 else text[:77] + "...") if text else "(none)"

    def paper(key, header):
        return column(key, header, lambda value: format_number(value, 2))

    return markdown_table(rows, [
        column("method"), column("length", fmt=lambda length: length or "-"),
        mean_std_column("test acc", "test_accuracy"), mean_std_column("predicted yes", "predicted_yes", 2),
        mean_std_column("unembedded acc", "unembedded_test_accuracy"),
        mean_std_column("ppl", "prompt_perplexity", 1), mean_std_column("log-ppl", "prompt_log_perplexity", 2),
        paper("paper_accuracy", "paper acc"), paper("paper_perplexity", "paper ppl (their scale)"), SEEDS_COLUMN,
        column("sample_readout", "prompt text (first seed)", sample)])


def plot(rows: list[dict], path: Path) -> Path:
    """Test accuracy and log-perplexity against prompt length, the paper's figures dashed."""
    with saved_figure(path, 2, (11, 4.2)) as (acc_ax, ppl_ax):
        colours = {"soft-prompt": "tab:blue", "pez": "tab:orange", "natural": "tab:green", "no-prompt": "grey"}
        markers = {"soft-prompt": "o", "pez": "s", "natural": "^"}  # distinct, so coinciding points stay visible
        for method in METHOD_ORDER[:3]:
            members = sorted((r for r in rows if r["method"] == method), key=lambda r: r["length"])
            if not members:
                continue
            for ax, metric, paper, label in ((acc_ax, "test_accuracy", "paper_accuracy", ("", " (paper)")),
                                             (ppl_ax, "prompt_log_perplexity", "paper_perplexity",
                                              (" (measured log-ppl)", " (paper, their scale)"))):
                ax.errorbar([r["length"] for r in members], [r[f"{metric}_mean"] for r in members],
                            yerr=[r[f"{metric}_std"] for r in members], marker=markers[method], capsize=3,
                            markerfacecolor="none" if method == "pez" else None, markersize=9 if method == "pez" else 6,
                            color=colours[method], label=method + label[0])
                published = [(r["length"], r[paper]) for r in members if r[paper] is not None]
                if published:
                    ax.plot(*zip(*published), linestyle="--", marker="x", color=colours[method], alpha=0.6,
                            label=method + label[1])
        baseline = [r for r in rows if r["method"] == "no-prompt"]
        if baseline:
            acc_ax.axhline(baseline[0]["test_accuracy_mean"], color="grey", linestyle=":", label="no prompt")
        lengths = sorted({r["length"] for r in rows if r["method"] != "no-prompt"})
        for ax in (acc_ax, ppl_ax):
            ax.set_xscale("log")
            ax.set_xticks(lengths, [str(length) for length in lengths])
            ax.minorticks_off()
            ax.set_xlabel("prompt length (tokens)")
            ax.legend(fontsize=7)
        acc_ax.set(ylabel="test accuracy", title="BoolQ accuracy")
        ppl_ax.set(ylabel="log-perplexity of the prompt text", title="prompt perplexity (readout text)")
    return path


def setup_notes(args: argparse.Namespace, lm, scorer, task, records: list[dict]) -> list[str]:
    """What the numbers were measured on, plainly, with the ways it differs from the paper."""
    test_sizes = sorted({r["eval_examples"] for r in records if r and r.get("eval_examples")})
    notes = [(f"- mode `{args.mode}`: task LM `{lm.spec}`, perplexity scorer `{scorer.spec}`, {args.steps} steps at "
              f"batch {args.batch_size}, dev evaluation every {args.eval_every} steps, seeds {list(args.seeds)}; "
              f"soft prompt lr scale {args.soft_lr_scale or 'agent default (0.1)'}, PEZ lr scale "
              f"{args.pez_lr_scale or 'agent default (1.0)'} (× std of the vocabulary embeddings).")]
    if not lm.is_encoder_decoder:
        notes.append(f"- The task LM `{lm.spec}` is a causal LM: the answer is read from the \" yes\"/\" no\" "
                     "logits of the next token after `Answer:`. The paper uses T5-small and reads them at the first "
                     "decoder step (this script's `--full` path).")
    if scorer.spec != "gpt2-xl":
        notes.append(f"- Perplexity is scored by `{scorer.spec}`, not the paper's GPT2-XL.")
    if args.data_dir == HUB:
        notes.append("- Data: super_glue/boolq from the hub; test = its validation split, dev = the last 500 training "
                     "examples (picks the best prompt during training), train = the rest.")
    else:
        notes.append(f"- Data: FewGLUE's 32 BoolQ examples ({args.data_dir}), shuffled with seed 0 and cut into "
                     "16 train / 8 dev / 8 test. Dev picks the best prompt during training, so it is not scored; "
                     f"test accuracy is over {' / '.join(map(str, test_sizes)) or '?'} examples (one example = "
                     f"{1 / test_sizes[0] if test_sizes else math.nan:.3f}), so a difference of one or two examples "
                     "is noise.")
    labels = task.load_split("test", limit=args.eval_limit)["label"]
    yes = sum(labels) / max(len(labels), 1)
    notes.append(f"- The test examples scored here are {yes:.1%} yes: always answering yes scores {yes:.3f}, always "
                 f"no {1 - yes:.3f}. BoolQ's validation split is 62.2% yes (SuperGLUE's majority baseline), so the "
                 "paper's 62% and 38% match the always-yes and always-no accuracies; `predicted yes` (the "
                 "fraction of test examples answered yes) shows whether a prompt does more than pick one answer.")
    notes.append("- `ppl` is exp(mean NLL per token) of the prompt text (soft prompt: its nearest-token readout under "
                 f"the {args.unembed_metric} distance; PEZ: its tokens; natural: the hand-written text), `log-ppl` its "
                 "log. The paper's figures (2.5–8) read like log-perplexity; compare them with `log-ppl`.")
    notes.append("- `unembedded acc`: the soft prompt's readout text used as a discrete prompt (the performance "
                 "differential is its gap to `test acc`).")
    unchanged = [r["cell"] for r in records if r and r.get("readout_changed") is False]
    if unchanged:
        names = ", ".join(f"{c['method']} L={c['length']} seed {c['seed']}" for c in unchanged)
        notes.append(f"- The readout text of {len(unchanged)} trained prompt(s) is still the random initial tokens "
                     f"({names}): training never moved the prompt (or PEZ's projection) to other nearest tokens, "
                     "so their perplexity is that of random vocabulary tokens (soft prompt and PEZ start from the "
                     "same tokens for a given seed and length).")
    return notes


def results_markdown(args, lm, scorer, task, records, rows) -> str:
    missing = sum(r is None for r in records)
    return markdown_document(
        f"BoolQ: soft prompt vs PEZ by prompt length ({args.mode} mode)",
        "Reproduces Figure 2 of \"Towards Interpretable Soft Prompts\" (Patel et al. 2025).",
        "\n".join(setup_notes(args, lm, scorer, task, records)), table(rows),
        "Paper (T5-small, GPT2-XL scorer, full BoolQ): soft prompt best accuracy 62% (20 and 100 tokens), PEZ 38% "
        "(the same as no prompt); perplexity natural / soft / PEZ: 100 tokens 2.82 / 6.12 / 5.15, 20 tokens 2.49 / "
        "5.64 / 6.45, 5 tokens 2.60 / 6.18 / 8.09 (their scale, likely log-perplexity).",
        "\n".join(["Natural prompts:", *[f"- ~{n} tokens: {text!r}" for n, text in NATURAL_PROMPTS.items()]]),
        f"{missing} cells have no result yet (run the script again to finish them)." if missing else "")


# --------------------------------------------------------------------------- main


def main(argv=None) -> int:
    args = parse_args(argv)
    from rlprompt_interp.models import load_lm
    from rlprompt_interp.tasks import get_task

    task = get_task("boolq", data_dir=None if args.data_dir == HUB else args.data_dir)
    lm = load_lm(args.model, role="task")
    scorer = load_lm(args.scorer, role="scorer")
    if scorer.is_encoder_decoder:
        raise SystemExit(f"--scorer must be a causal LM to score perplexity; {scorer.spec!r} is an encoder-decoder")
    all_cells = cells(args)
    print(f"{SCRIPT} ({args.mode}): task LM {lm.spec}, scorer {scorer.spec}, {len(all_cells)} cells -> {args.output}",
          flush=True)
    records = run_cells(args, all_cells, make_run_cell(args, task, lm, scorer), config=sweep_config(args),
                        log=lambda line: print(line, flush=True))
    if records is None:
        return 0
    rows = summary_rows(records)
    write_results(args.output, {
        "config": sweep_config(args), "cells": all_cells, "records": records,
        "summary": without_records(rows),
        "paper": {"accuracy": [[*k, v] for k, v in PAPER_ACCURACY.items()],
                  "perplexity": [[*k, v] for k, v in PAPER_PERPLEXITY.items()]}},
        results_markdown(args, lm, scorer, task, records, rows), printed=table(rows),
        plots={f"{SCRIPT}.png": lambda path: plot(rows, path)})
    return 0


if __name__ == "__main__":
    run_script(main)
