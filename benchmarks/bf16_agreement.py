"""What running the frozen LMs in bf16 changes: test accuracy of the same prompts, and the ranking of
one training step's prompt rewards, in fp32 and in bf16 (same model, same process).

``--dtype auto`` picks bf16 on CPUs with AMX / AVX512-BF16 and on GPUs; this script is the evidence
that it changes no conclusion: accuracies agree within a fraction of a point and the step's
rewards keep their order (Spearman correlation). On a CPU without bf16 instructions bf16 is
emulated and slow, but the numbers are the same.

    python benchmarks/bf16_agreement.py --data-dir ../shared/data/few-shot          # whole SST-2 test
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPTS = ["", " Sentiment:", " The movie was", " and one another and it", " It was", "'s own perspective has also"]


def ranks(values: torch.Tensor) -> torch.Tensor:
    order = values.argsort()
    result = torch.empty_like(values)
    result[order] = torch.arange(len(values), dtype=values.dtype)
    return result


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra, rb = ranks(a.double()), ranks(b.double())
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "few-shot"))
    parser.add_argument("--verbalizers", nargs="+", default=[" negative", " positive"])
    parser.add_argument("--prompts", nargs="+", default=PROMPTS, help="prompts scored on the test split")
    parser.add_argument("--limit", type=int, help="test examples (default: all)")
    parser.add_argument("--step-prompts", type=int, default=16, help="prompts of the one training step")
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)

    from rlprompt_interp.cli.common import quiet_libraries
    from rlprompt_interp.evaluation import evaluate_prompt
    from rlprompt_interp.models import load_lm
    from rlprompt_interp.policies import LMAdaptorPolicy
    from rlprompt_interp.prompts import LearnedPrompt
    from rlprompt_interp.rewards import TaskGapReward, PromptBatch
    from rlprompt_interp.tasks import get_task

    quiet_libraries()
    if args.threads:
        torch.set_num_threads(args.threads)
    task = get_task("sst-2", data_dir=args.data_dir).with_options(verbalizers=args.verbalizers)
    models = {name: load_lm(args.model, role="task", dtype=name) for name in ("float32", "bfloat16")}
    tokenizer = models["float32"].tokenizer

    print(f"{args.model}, SST-2 test ({args.limit or 'all'} examples), verbalizers {args.verbalizers}")
    print(f"{'prompt':<34} {'fp32':>8} {'bf16':>8} {'gap':>7}")
    gaps = []
    for text in args.prompts:
        prompt = LearnedPrompt(text=text, token_ids=tokenizer.encode(text, add_special_tokens=False))
        acc = {name: evaluate_prompt(task, lm, prompt if text else text, split="test", limit=args.limit,
                                     progress=False).accuracy for name, lm in models.items()}
        gaps.append(abs(acc["float32"] - acc["bfloat16"]))
        print(f"{text!r:<34} {acc['float32']:8.4f} {acc['bfloat16']:8.4f} {gaps[-1] * 100:6.2f}pt", flush=True)

    policy = LMAdaptorPolicy(models["float32"], top_k=256)
    ids = policy.sample(args.step_prompts, 5, generator=torch.Generator().manual_seed(0)).token_ids.tolist()
    train = task.load_split("train")
    batch = {"sentence": list(train["sentence"]), "label": list(train["label"])}
    scores = {name: TaskGapReward(task, lm)(PromptBatch(policy.decode(ids), ids), batch).scores
              for name, lm in models.items()}
    rho = spearman(scores["float32"], scores["bfloat16"])
    print(f"one step's rewards ({args.step_prompts} random prompts x {len(batch['label'])} examples): Spearman "
          f"{rho:.4f}, max |difference| {(scores['float32'] - scores['bfloat16']).abs().max():.3f} "
          f"(reward scale {scores['float32'].abs().max():.1f})")
    print(f"max_accuracy_gap_points={max(gaps) * 100:.3f} spearman={rho:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
