"""Examples scored per second by the classification reward: cached batched path vs a per-prompt loop.

The per-prompt loop is what the reference RLPrompt code does: for each prompt, one task-LM forward
over the full template text of every example. The cached path encodes each example once (its KV
cache is reused for every prompt and step) and runs only the prompt tokens of all N x M pairs,
reading only the verbalizer rows of the head. Same model, same inputs (the same spliced token
ids), same process; the script checks that both give the same logits and prints the ratio.

    python benchmarks/reward_throughput.py --data-dir ../shared/data/few-shot  # smollm2-135m, 16 x 32
"""

from __future__ import annotations

import argparse
import time

import torch

from rlprompt_interp.cli.common import quiet_libraries
from rlprompt_interp.models import load_lm
from rlprompt_interp.rewards import TaskGapReward
from rlprompt_interp.scoring import next_token_logits, segment_example
from rlprompt_interp.tasks import get_task


def per_prompt_loop(lm, task, prompt_ids, examples, verbalizer_ids) -> torch.Tensor:
    """One forward per prompt over all M full inputs: logits ``[N, M, C]``."""
    rows = []
    for ids in prompt_ids:
        sequences = []
        for example in examples:
            before, after = task.template.split(example)
            b, a = segment_example(lm, before, after, ids)
            sequences.append(b + list(ids) + a)
        rows.append(next_token_logits(lm, sequences, verbalizer_ids).cpu())
    return torch.stack(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/data/few-shot")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--examples", type=int, default=32)
    parser.add_argument("--prompt-length", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2, help="timed calls of each path (best is reported)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128, help="pairs per forward in the cached path")
    args = parser.parse_args()
    quiet_libraries()
    torch.set_num_threads(args.threads)

    lm = load_lm(args.model, role="task")
    task = get_task("sst-2", data_dir=args.data_dir)
    data = task.load_split("train", limit=args.examples)
    examples = [{"sentence": s} for s in data["sentence"]]
    generator = torch.Generator().manual_seed(0)
    vocab = len(lm.tokenizer)
    prompt_ids = [torch.randint(0, vocab, (args.prompt_length,), generator=generator).tolist()
                  for _ in range(args.prompts)]
    reward = TaskGapReward(task, lm, batch_size=args.batch_size)
    pairs = args.prompts * len(examples)
    lengths = [len(segment_example(lm, *task.template.split(e))[0]) for e in examples]
    print(f"model={lm.spec} device={lm.device} threads={torch.get_num_threads()} prompts={args.prompts} "
          f"examples={len(examples)} (mean {sum(lengths) / len(lengths):.1f} tokens) prompt_length={args.prompt_length}")

    start = time.perf_counter()
    reward.verbalizer_logits(prompt_ids, examples)
    first = time.perf_counter() - start
    print(f"cached path, first call (encodes the {len(examples)} examples once): {first:.2f} s")
    timings = {}
    for name, run in (("cached", lambda: reward.verbalizer_logits(prompt_ids, examples)),
                      ("per-prompt loop", lambda: per_prompt_loop(lm, task, prompt_ids, examples,
                                                                  reward.verbalizer_ids))):
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = run()
            best = min(best, time.perf_counter() - start)
        timings[name] = (best, result)
        print(f"{name:>16}: {best:.2f} s per step, {pairs / best:.1f} examples/s")
    difference = (timings["cached"][1] - timings["per-prompt loop"][1]).abs().max().item()
    ratio = timings["per-prompt loop"][0] / timings["cached"][0]
    print(f"max |logit difference| {difference:.2e}")
    print(f"speed-up of the cached path: {ratio:.1f}x")


if __name__ == "__main__":
    main()
