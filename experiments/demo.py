"""A few minutes of RLPrompt on a CPU: learn a 5-token SST-2 prompt offline and compare it with no prompt.

Training runs on a time budget (``--max-minutes``) rather than a fixed step count, so a faster
machine (a CPU with bf16 instructions, where ``--dtype auto`` trains in bf16) spends the same
minutes on more steps; the test accuracies are computed in fp32 on every machine.

Policy, task LM and perplexity scorer are the embedded default (SmolLM2-135M). The script prints
the test accuracy with no prompt, trains soft Q-learning with the classification gap reward, and prints the
test accuracy of the best prompt found on the dev split, on the same test sentences (a random
``--test-limit`` of them, stratified by label; 0 scores all 1,821).

What makes a few dozen steps enough (RLPrompt itself trains for thousands): verbalizers that suit
the model (" negative"/" positive": no prompt 0.605 on the whole test set, against 0.500 for
" terrible"/" great"), a policy that writes after a description of the task and may only choose
among its frozen LM's 20 likeliest next tokens (the fluency constraint, so every sampled prompt is
readable text), and a learning rate of 1e-3.
"""

import argparse
import sys
import tempfile
import time

import torch

from rlprompt_interp.agents.rlprompt import RLPromptAgent
from rlprompt_interp.cli.common import quiet_libraries
from rlprompt_interp.evaluation import describe_compute, evaluate_prompt
from rlprompt_interp.models import EVAL_DTYPE, compute_record, load_lm
from rlprompt_interp.perplexity import perplexity
from rlprompt_interp.tasks import get_task
from rlprompt_interp.tasks.sources import few_shot_source
from rlprompt_interp.tracking import add_report_to_argument, track_run

CONDITION = "Classify the sentiment of this movie review as positive or negative."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="auto", help="RLPrompt's few-shot folder, or hub; auto: "
                                                           "../shared/data/few-shot when it exists, else the hub")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--verbalizers", nargs="+", default=[" negative", " positive"])
    parser.add_argument("--steps", type=int, default=300, help="at most this many steps (the budget usually ends first)")
    parser.add_argument("--max-minutes", type=float, default=3.0, help="the training budget: steps run until it is spent")
    parser.add_argument("--dtype", default="auto", help="training dtype (auto: bf16 on a CPU with bf16 instructions)")
    parser.add_argument("--prompt-length", type=int, default=5)
    parser.add_argument("--prompts-per-step", type=int, default=8)
    parser.add_argument("--examples-per-step", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--fluent-top-k", type=int, default=20, help="0: the whole vocabulary")
    parser.add_argument("--prior-weight", type=float, default=0.0, help="beta of the LM prior (0: RLPrompt)")
    parser.add_argument("--condition", default=CONDITION, help="the text the policy writes the prompt after")
    parser.add_argument("--reward", default="gap=1", help="e.g. gap=1,log-perplexity=10")
    parser.add_argument("--test-limit", type=int, default=400, help="a random N test examples, stratified (0: all 1821)")
    parser.add_argument("--output", help="run folder (default: a temporary folder)")
    parser.add_argument("--seed", type=int, default=0)
    add_report_to_argument(parser)
    args = parser.parse_args()
    quiet_libraries()
    started = time.time()

    source, where = few_shot_source(args.data_dir)
    print(f"data: {where}")
    task = get_task("sst-2", **source).with_options(verbalizers=args.verbalizers)
    lm = load_lm(args.model, role="task", dtype=EVAL_DTYPE)
    limit = args.test_limit or None
    scope = f"a random {args.test_limit} test examples" if limit else "all test examples"
    print(f"SST-2 (16-shot, seed 16-42), template {task.template.text!r}, verbalizers {list(task.verbalizers)}, "
          f"model {lm.spec}, torch threads {torch.get_num_threads()}; accuracy on {scope}")
    print(f"training in {describe_compute(compute_record(args.dtype))}; test accuracy in {EVAL_DTYPE}")

    before = evaluate_prompt(task, lm, "", split="test", limit=limit, progress=False)
    print(f"\n[before] no prompt: test accuracy {before.accuracy:.4f}")

    agent = RLPromptAgent(model=args.model, scorer=args.model, reward=args.reward, lr=args.lr,
                          prompts_per_step=args.prompts_per_step, examples_per_step=args.examples_per_step,
                          fluent_top_k=args.fluent_top_k or None, prior_weight=args.prior_weight, condition=args.condition,
                          eval_every=10, max_seconds=args.max_minutes * 60, dtype=args.dtype)
    output = args.output or tempfile.mkdtemp(prefix="rlprompt-demo-")
    with track_run(args.report_to, output, config=vars(args)) as tracker:
        agent.on_log = tracker.log_row
        learned = agent.fit(task, prompt_length=args.prompt_length, steps=args.steps, seed=args.seed,
                            output_dir=output)
    trained = learned.curve[-1]["step"] if learned.curve else 0
    after = evaluate_prompt(task, lm, learned, split="test", limit=limit, progress=False)
    ppl = perplexity(lm, [learned.text]).item()

    print(f"\n[after] {trained} steps; learned prompt {learned.text!r} (best dev step {learned.scores['best_step']}, "
          f"dev accuracy {learned.scores.get('dev_accuracy', float('nan')):.4f}, perplexity {ppl:.1f})")
    print(after.format())
    print(f"learned prompt saved to {output}; {time.time() - started:.0f} s in all")
    print(f"\ntest accuracy ({scope}): no prompt {before.accuracy:.4f} -> learned prompt {after.accuracy:.4f}")


if __name__ == "__main__":
    from rlprompt_interp.cli import run_reporting_errors

    sys.exit(run_reporting_errors(main))
