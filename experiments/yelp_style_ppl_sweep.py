"""Yelp text style transfer with RLPrompt + alpha * perplexity (Figure 8 of "Towards Interpretable Soft Prompts").

For each direction (negative -> positive, positive -> negative) and each alpha, RLPrompt's soft
Q-learning learns a prompt against

    StyleTransferReward(task LM, style classifier)  +  alpha * Perplexity(scorer, log=True)

(content + style of sampled rewrites, max over bootstrap groups, z-scored per input; minus the
prompt's log-perplexity under the scorer). The learned prompt is then evaluated on the test
sentences of the source style (content, style accuracy, fluency, joint, geometric mean, BLEU)
next to the no-prompt baseline, and its perplexity is measured. Writes ``results.json``,
``results.md`` (the table with sample prompts) and ``yelp_style_ppl_sweep.png`` to ``--output``.

    python experiments/yelp_style_ppl_sweep.py --quick    # embedded SmolLM2-135M, CPU, small budget
    python experiments/yelp_style_ppl_sweep.py --full     # distilgpt2 policy/task LM, gpt2-xl scorer

Every (direction, alpha) pair and each direction's no-prompt baseline is a cell of a
:class:`~rlprompt_interp.sweeps.Sweep` under ``--output`` (default ``runs/yelp-style-ppl-sweep-<mode>``):
a finished cell is read back, a killed one resumes from its checkpoint, and a re-run with other
settings in the same folder is refused.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from rlprompt_interp.config import DeprecatedFlag
from rlprompt_interp.experiment import (experiment_parser, markdown_document, parse_experiment_args, run_cells,
                                        run_script, write_results)
from rlprompt_interp.sweep_report import column, format_number, markdown_table, saved_figure


def parse_args(argv=None) -> argparse.Namespace:
    # the settings every cell shares: a re-run in the same folder must use the same ones
    parser = experiment_parser(__doc__, __file__, axes=("alphas", "directions"),
                               options={"directions": dict(choices=["0_to_1", "1_to_0"])})
    parser.add_argument("--inputs-per-step", dest="examples_per_step", type=int, action=DeprecatedFlag,
                        replacement="--examples-per-step", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parse_experiment_args(parser, argv)


def make_agent(args, direction: str, alpha: float, models: dict, classifier, task):
    """The RLPrompt agent of one cell: the style-transfer reward (plus alpha times the prompt's log-perplexity)
    and the mode's policy and soft Q-learning settings, by ``train``'s option names."""
    from rlprompt_interp.agents.rlprompt import RLPromptAgent
    from rlprompt_interp.rewards.perplexity import Perplexity
    from rlprompt_interp.rewards.style_transfer import StyleTransferReward
    from rlprompt_interp.style.generation import GenerationSettings

    settings = GenerationSettings(num_samples=args.num_samples, top_k=10, length_ratio=args.length_ratio,
                                  lowercase=task.lowercase, batch_size=64, seed=args.seed)
    reward = StyleTransferReward(models["task"], classifier, target_style=task.target_style, settings=settings,
                                 num_bootstraps=args.bootstraps, template=task.template.text)
    if alpha:
        reward = reward + alpha * Perplexity(models["scorer"], log=True)
    styles = {"0_to_1": ("negative", "positive"), "1_to_0": ("positive", "negative")}[direction]
    condition = args.condition.format(source=styles[0], target=styles[1]) if args.condition else None
    return RLPromptAgent(model=args.task_model, policy_model=args.policy, scorer=args.scorer, reward=reward,
                         fluent_top_k=args.fluent_top_k or None, condition=condition, top_k=0,
                         action_space=args.action_space, no_repeat=args.no_repeat, prior_weight=args.prior_weight,
                         prompts_per_step=args.prompts_per_step, examples_per_step=args.examples_per_step, lr=args.lr,
                         eval_every=args.eval_every, dev_limit=args.dev_inputs, quiet=True)


def make_cell_runner(args, models: dict, classifier):
    """``run_cell(cell, folder)``: the no-prompt baseline (alpha None) or a prompt trained and evaluated."""
    from rlprompt_interp.sweeps import train_cell
    from rlprompt_interp.tasks.style_transfer import get_style_task

    def run_cell(cell: dict, folder: Path) -> dict:
        task = get_style_task("yelp-style", data_dir=args.data_dir, direction=cell["direction"])
        prompt, train_seconds = "", None
        if cell["alpha"] is not None:
            agent = make_agent(args, cell["direction"], cell["alpha"], models, classifier, task)
            _, trained = train_cell(agent, task, folder, prompt_length=args.prompt_length, steps=args.steps,
                                    seed=args.seed, report_to=args.report_to, config={**args.settings(), **cell})
            prompt, train_seconds = trained["prompt"], trained["train_seconds"]
        row = {"direction": cell["direction"], "alpha": cell["alpha"], "prompt": prompt,
               "train_seconds": train_seconds, **evaluate(args, task, prompt, models, classifier,
                                                          folder / "test.outputs.tsv")}
        print(table([row]).splitlines()[-1], flush=True)
        return row

    return run_cell


def evaluate(args, task, prompt: str, models: dict, classifier, outputs_file: Path) -> dict:
    from rlprompt_interp.perplexity import prompt_perplexity
    from rlprompt_interp.style.evaluation import evaluate_style_transfer

    report = evaluate_style_transfer(task, models["task"], prompt, classifier=classifier, scorer=models["scorer"],
                                     limit=args.eval_limit, length_ratio=args.length_ratio, batch_size=32,
                                     outputs_file=outputs_file, progress=False)
    row = {k: getattr(report, k) for k in ("content", "style_accuracy", "fluency", "perplexity_median", "joint",
                                           "geometric_mean", "bleu_references", "bleu_inputs", "examples")}
    return {**row, "prompt_perplexity": prompt_perplexity(models["scorer"], prompt)}


def table(rows: list[dict]) -> str:
    def number(key, header, digits=3):
        return column(key, header, lambda value: format_number(value, digits))

    return markdown_table(rows, [
        column("direction"), column("alpha", fmt=lambda alpha: "no prompt" if alpha is None else f"{alpha:g}"),
        column("prompt", fmt=repr),
        column("prompt_perplexity", "prompt ppl", lambda ppl: "-" if ppl is None else f"{ppl:.0f}"),
        number("content", "content"), number("style_accuracy", "style acc"), number("fluency", "fluency"),
        number("perplexity_median", "output ppl (median)", 1), number("joint", "joint"),
        number("geometric_mean", "GM"), number("bleu_references", "BLEU ref", 1),
        number("bleu_inputs", "BLEU input", 1),
        ("train s", lambda r: "-" if not r.get("train_seconds") else f"{r['train_seconds']:.0f}")])


def plot(rows: list[dict], path: Path) -> None:
    directions = sorted({r["direction"] for r in rows})
    with saved_figure(path, 2, (10, 4)) as axes:
        for direction, marker in zip(directions, "os"):
            learned = sorted([r for r in rows if r["direction"] == direction and r["alpha"] is not None],
                             key=lambda r: r["alpha"])
            alphas = [r["alpha"] for r in learned]
            axes[0].plot(alphas, [r["content"] for r in learned], marker=marker, label=f"content {direction}")
            axes[0].plot(alphas, [r["style_accuracy"] for r in learned], marker=marker, linestyle="--",
                         label=f"style acc {direction}")
            axes[1].plot(alphas, [math.log(r["prompt_perplexity"]) for r in learned], marker=marker, label=direction)
            base = [r for r in rows if r["direction"] == direction and r["alpha"] is None]
            if base:
                axes[0].axhline(base[0]["style_accuracy"], color="grey", linewidth=0.8, linestyle=":")
        axes[0].set(xlabel="alpha (perplexity coefficient)", ylabel="score",
                    title="content and style (dotted: no-prompt style)")
        axes[1].set(xlabel="alpha (perplexity coefficient)", ylabel="log perplexity of the prompt",
                    title="prompt perplexity")
        axes[0].legend(fontsize=7)
        axes[1].legend(fontsize=7)


def main(argv=None) -> int:
    args = parse_args(argv)
    from rlprompt_interp.style.classifier import resolve_classifier
    from rlprompt_interp.models import load_lm
    from rlprompt_interp.rewards.style import StyleClassifier

    out = Path(args.output)
    models = {"policy": load_lm(args.policy, role="policy"), "task": load_lm(args.task_model, role="task"),
              "scorer": load_lm(args.scorer, role="scorer")}
    classifier = StyleClassifier(resolve_classifier(args.style_classifier))
    print(f"mode {args.mode}: policy {models['policy'].spec}, task LM {models['task'].spec}, "
          f"scorer {models['scorer'].spec}, {args.steps} steps x {args.prompts_per_step} prompts x "
          f"{args.examples_per_step} inputs x {args.num_samples} samples")
    cells = [{"direction": direction, "alpha": alpha}  # alpha None: the no-prompt baseline
             for direction in args.directions for alpha in [None, *args.alphas]]
    records = run_cells(args, cells, make_cell_runner(args, models, classifier))
    if records is None:
        return 0
    rows = [{key: value for key, value in record.items() if key != "cell"} for record in records]
    write_results(out, {"settings": args.settings(), "rows": rows},
                  markdown_document(f"Yelp style transfer, RLPrompt + alpha * perplexity ({args.mode} mode)", table(rows)),
                  printed=table(rows), plots={"yelp_style_ppl_sweep.png": lambda path: plot(rows, path)})
    return 0


if __name__ == "__main__":
    run_script(main)
