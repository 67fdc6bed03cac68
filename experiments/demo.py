"""The README's main job: learn a 5-token prompt for SST-2 with RLPrompt, offline, on a CPU, in minutes.

Policy, task LM and perplexity scorer are the embedded default (SmolLM2-135M). The script prints
the test accuracy with no prompt, trains for a few dozen soft Q-learning steps (accuracy reward),
and prints the test accuracy of the best prompt found on the dev split. To stay within a few
minutes it scores a random ``--test-limit`` test examples (stratified by label) (400 by default; 0 scores all 1821)
and uses a higher learning rate than RLPrompt's 5e-5 (which needs thousands of steps).
"""

import argparse
import sys
import tempfile
import time

import torch

from rlprompt_interp.agents.rlprompt import RLPromptAgent
from rlprompt_interp.cli.common import quiet_libraries
from rlprompt_interp.evaluation import evaluate_prompt
from rlprompt_interp.models import load_lm
from rlprompt_interp.perplexity import perplexity
from rlprompt_interp.tasks import get_task
from rlprompt_interp.tasks.sources import few_shot_source
from rlprompt_interp.tracking import add_report_to_argument, track_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", default="auto", help="RLPrompt's few-shot folder, or hub; auto: "
                                                           "../shared/data/few-shot when it exists, else the hub")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--prompt-length", type=int, default=5)
    parser.add_argument("--prompts-per-step", type=int, default=8)
    parser.add_argument("--examples-per-step", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--reward", default="accuracy=1", help="e.g. accuracy=1,perplexity=0.01")
    parser.add_argument("--test-limit", type=int, default=400, help="a random N test examples, stratified (0: all 1821)")
    parser.add_argument("--output", help="run folder (default: a temporary folder)")
    parser.add_argument("--seed", type=int, default=0)
    add_report_to_argument(parser)
    args = parser.parse_args()
    quiet_libraries()
    started = time.time()

    source, where = few_shot_source(args.data_dir)
    print(f"data: {where}")
    task = get_task("sst-2", **source)
    lm = load_lm(args.model, role="task")
    limit = args.test_limit or None
    scope = f"a random {args.test_limit} test examples" if limit else "all test examples"
    print(f"SST-2 (16-shot, seed 16-42), template {task.template.text!r}, verbalizers {list(task.verbalizers)}, "
          f"model {lm.spec}, torch threads {torch.get_num_threads()}; accuracy on the {scope}")

    before = evaluate_prompt(task, lm, "", split="test", limit=limit)
    print(f"\n[before] no prompt: test accuracy {before.accuracy:.4f}")

    agent = RLPromptAgent(model=args.model, scorer=args.model, reward=args.reward, lr=args.lr,
                          prompts_per_step=args.prompts_per_step, examples_per_step=args.examples_per_step,
                          eval_every=10)
    output = args.output or tempfile.mkdtemp(prefix="rlprompt-demo-")
    with track_run(args.report_to, output, config=vars(args)) as tracker:
        agent.on_log = tracker.log_row
        learned = agent.fit(task, prompt_length=args.prompt_length, steps=args.steps, seed=args.seed,
                            output_dir=output)
    after = evaluate_prompt(task, lm, learned, split="test", limit=limit)
    ppl = perplexity(lm, [learned.text]).item()

    print(f"\n[after] learned prompt {learned.text!r} (best dev step {learned.scores['best_step']}, "
          f"dev accuracy {learned.scores.get('dev_accuracy', float('nan')):.4f}, perplexity {ppl:.1f})")
    print(after.format())
    print(f"\ntest accuracy ({scope}): no prompt {before.accuracy:.4f} -> learned prompt {after.accuracy:.4f}")
    print(f"learned prompt saved to {output}; {time.time() - started:.0f} s in all")


if __name__ == "__main__":
    from rlprompt_interp.cli import run_reporting_errors

    sys.exit(run_reporting_errors(main))
