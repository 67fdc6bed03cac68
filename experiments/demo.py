"""A few minutes of RLPrompt on a CPU: learn a 5-token SST-2 prompt offline and compare it with no prompt.

The run is `rlprompt-interp train --recipe demo-sst2` (rlprompt_interp/recipes/demo-sst2.yaml): the
embedded SmolLM2-135M as policy and task LM, verbalizers " negative"/" positive", the policy writing
after a description of the task among its frozen LM's 20 likeliest next tokens (so every sampled
prompt is readable text), the classification gap reward, lr 1e-3. Any `train` flag overrides the
recipe (`--seed 1`, `--max-minutes 5`, `--dtype float32`, ...; see `rlprompt-interp train --help`).

The script prints the test accuracy with no prompt, trains, and prints the test accuracy of the best
prompt found on the dev split, on the same test sentences (a random ``--test-limit`` of them,
stratified by label; 0 scores all 1,821). Training runs on a time budget (``--max-minutes``, 3) rather
than a fixed step count, so a faster machine (a CPU with bf16 instructions, where ``--dtype auto``
trains in bf16) spends the same minutes on more steps; the test accuracies are computed in fp32 on
every machine.
"""

import argparse
import tempfile
import time

import torch

from rlprompt_interp.cli import build_parser
from rlprompt_interp.cli.common import build_task, quiet_libraries
from rlprompt_interp.evaluation import evaluate_prompt
from rlprompt_interp.experiment import run_script
from rlprompt_interp.models import EVAL_DTYPE, compute_record, describe_compute, load_lm
from rlprompt_interp.perplexity import perplexity
from rlprompt_interp.tasks.sources import few_shot_source
from rlprompt_interp.tracking import track_run

RECIPE = "demo-sst2"


def parse_args(argv=None) -> tuple[argparse.Namespace, argparse.Namespace]:
    """(the demo's own options, the `train` arguments: the recipe, then any train flag given)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="every other flag is a `rlprompt-interp train` flag")
    parser.add_argument("--data-dir", default="auto", help="RLPrompt's few-shot folder, or hub; auto: "
                                                           "../shared/data/few-shot when it exists, else the hub")
    parser.add_argument("--test-limit", type=int, default=400, help="a random N test examples, stratified (0: all 1821)")
    parser.add_argument("--output", help="run folder (default: a temporary folder)")
    own, train_flags = parser.parse_known_args(argv)
    source, where = few_shot_source(own.data_dir)
    print(f"data: {where}")
    data = (["--data-dir", source["data_dir"], "--seed-split", source["seed"]] if source["data_dir"] else
            ["--shots", str(source["shots"]), "--split-seed", str(source["split_seed"])])
    output = own.output or tempfile.mkdtemp(prefix="rlprompt-demo-")
    train = build_parser().parse_args(["train", "--recipe", RECIPE, *data, "--output", output, *train_flags])
    return own, train


def main(argv=None) -> int:
    own, args = parse_args(argv)
    from rlprompt_interp.agents.rlprompt import RLPromptAgent, RLPromptConfig

    quiet_libraries()
    started = time.time()
    task = build_task(args)
    agent = RLPromptAgent(RLPromptConfig.from_args(args))
    lm = load_lm(args.model, role="task", dtype=EVAL_DTYPE)
    limit = own.test_limit or None
    scope = f"a random {own.test_limit} test examples" if limit else "all test examples"
    print(f"SST-2 (16-shot), template {task.template.text!r}, verbalizers {list(task.verbalizers)}, model {lm.spec}, "
          f"torch threads {torch.get_num_threads()}; accuracy on {scope}")
    print(f"training in {describe_compute(compute_record(args.dtype))}, at most {args.steps} steps in "
          f"{args.max_minutes:g} minutes; test accuracy in {EVAL_DTYPE}")

    before = evaluate_prompt(task, lm, "", split="test", limit=limit, progress=False)
    print(f"\n[before] no prompt: test accuracy {before.accuracy:.4f}")
    with track_run(args.report_to, args.output, config=vars(args)) as tracker:
        agent.on_log = tracker.log_row
        learned = agent.fit(task, prompt_length=args.prompt_length, steps=args.steps, seed=args.seed,
                            output_dir=args.output)
    trained = learned.curve[-1]["step"] if learned.curve else 0
    after = evaluate_prompt(task, lm, learned, split="test", limit=limit, progress=False)
    ppl = perplexity(lm, [learned.text]).item()

    print(f"\n[after] {trained} steps; learned prompt {learned.text!r} (best dev step {learned.scores['best_step']}, "
          f"dev accuracy {learned.scores.get('dev_accuracy', float('nan')):.4f}, perplexity {ppl:.1f})")
    print(after.format())
    print(f"learned prompt saved to {args.output}; {time.time() - started:.0f} s in all")
    print(f"\ntest accuracy ({scope}): no prompt {before.accuracy:.4f} -> learned prompt {after.accuracy:.4f}")
    return 0


if __name__ == "__main__":
    run_script(main)
