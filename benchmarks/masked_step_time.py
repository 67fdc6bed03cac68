"""Seconds per RLPrompt step with a masked task LM (RoBERTa) beside the causal one of the same shape.

RLPrompt's own classification setting reads the class at RoBERTa's ``<mask>``: every token attends to
the prompt, so no example's keys and values can be reused across prompts, and each (prompt, example)
pair is a full forward (batched by length). The causal path caches each example once and runs only
the prompt's tokens. This script times both in one process, on random models of the same shapes:

* distilroberta-base (6 layers, 768 wide, 12 heads) beside distilgpt2 (the same dimensions);
* roberta-large (24 layers, 1024 wide, 16 heads) beside gpt2-medium (the same dimensions).

The policy is a random distilgpt2 in every run (RLPrompt's), the reward the gap reward alone, the
template ``{sentence} {prompt} {mask} .`` for the masked LM and ``{sentence} {prompt}`` for the causal
one, on SST-2's training sentences. A step is timed as ``step_time.py`` times it (every step from the
same untrained policy, so the prompts are as distinct as a run's first steps; median after warm-up).
Beside it, the bare forward over the masked pairs (the model body over exactly the reward's token
sequences, same batches, no head): the reward's overhead over the forward it cannot avoid. The last
line is machine readable::

    masked_s=<float> causal_s=<float> ratio=<float> ... (one group per shape pair)

    python benchmarks/masked_step_time.py --threads 2
    python benchmarks/masked_step_time.py --pairs roberta-large --prompts 8 --examples 8
    python benchmarks/masked_step_time.py --device cuda --dtype bf16
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rlprompt_interp.models import load_lm  # noqa: E402
from step_time import classification_term, set_up, sync, time_steps, training_data  # noqa: E402

SHAPE_PAIRS = {"distilroberta-base": "distilgpt2", "roberta-large": "gpt2-medium"}  # masked -> same-shape causal
TEMPLATES = {"masked": "{sentence} {prompt} {mask} .", "causal": "{sentence} {prompt}"}
POLICY = "random:distilgpt2"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", nargs="+", default=list(SHAPE_PAIRS), choices=list(SHAPE_PAIRS),
                        help="masked shapes to time, each beside its same-shape causal LM")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--examples", type=int, default=16)
    parser.add_argument("--prompt-length", type=int, default=5)
    parser.add_argument("--dtype", default="auto", help="auto (bf16 where fast, else fp32), fp32 or bf16")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: what accelerate picks)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "few-shot"))
    args = parser.parse_args(argv)
    args.direct = False  # step_time's env-vs-direct comparison is not this script's question
    return args


def build_trainer(args, task_model: str, template: str, dtype):
    from rlprompt_interp.agents.rlprompt import RLPromptAgent
    from rlprompt_interp.tasks import get_task

    task = get_task("sst-2", data_dir=args.data_dir, template=template, verbalizers=[" terrible", " great"])
    agent = RLPromptAgent(model=task_model, policy_model=POLICY, reward="gap=1", condition=None, prompts_per_step=args.prompts,
                          examples_per_step=args.examples, eval_every=0, dtype=dtype, quiet=True)
    for name in (task_model, POLICY):
        load_lm(name, role="task", device=args.device, dtype=dtype)  # on the requested device, shared by the agent
    trainer = agent.build(task, prompt_length=args.prompt_length, steps=10**9, seed=0)
    trainer.env.scorer.data = trainer.train_data = training_data(args, task)
    return trainer, task


@torch.inference_mode()
def bare_masked_forward(args, trainer, task) -> tuple[float, float]:
    """(seconds of the model body over one step's masked pairs in the reward's batches, seconds of the reward)."""
    from rlprompt_interp.rewards import PromptBatch
    from rlprompt_interp.scoring import right_pad, segment_example

    reward = classification_term(trainer)
    lm = reward.lm
    rollout = trainer.policy.sample(args.prompts, args.prompt_length, generator=torch.Generator().manual_seed(1))
    texts = trainer.policy.decode(rollout.token_ids)
    prompt_ids = reward.prompt_ids(PromptBatch(texts, rollout.token_ids.tolist()))
    batch = training_data(args, task)
    sequences = []
    for ids in prompt_ids:
        for sentence in batch["sentence"]:
            before, after = segment_example(lm, *task.template.split({"sentence": sentence}, reward.mask), ids)
            sequences.append(before + list(ids) + after)
    sequences.sort(key=len, reverse=True)  # the reward's order: by length, longest first
    seconds = 0.0
    for start in range(0, len(sequences), reward.batch_size):
        input_ids, attention_mask = right_pad(sequences[start:start + reward.batch_size], lm.tokenizer.pad_token_id,
                                              lm.device)
        sync(args)
        started = time.perf_counter()
        lm.model.base_model(input_ids=input_ids, attention_mask=attention_mask)
        sync(args)
        seconds += time.perf_counter() - started
    reward.forget_scores()
    sync(args)
    started = time.perf_counter()
    reward(PromptBatch(texts, rollout.token_ids.tolist()), batch)
    sync(args)
    return seconds, time.perf_counter() - started


def measure(args, task_model: str, kind: str, dtype) -> dict:
    trainer, task = build_trainer(args, task_model, TEMPLATES[kind], dtype)
    result = {}
    if kind == "masked":
        result["bare_forward"], result["reward_pairs"] = bare_masked_forward(args, trainer, task)
    result.update(time_steps(args, trainer))
    result["dtype"] = str(classification_term(trainer).lm.dtype).replace("torch.", "")
    return result


def main(argv=None) -> int:
    args = parse_args(argv)
    from rlprompt_interp.models import clear_model_cache

    device, dtype = set_up(args)
    print(f"device={device} dtype={str(dtype).replace('torch.', '')} threads={torch.get_num_threads()} "
          f"policy={POLICY} reward=gap=1 prompts={args.prompts} examples={args.examples} "
          f"prompt_length={args.prompt_length}; median of {args.steps} steps after {args.warmup} warm-up", flush=True)
    summary = []
    for masked_shape in args.pairs:
        causal_shape = SHAPE_PAIRS[masked_shape]
        runs = {}
        for kind, shape in (("causal", causal_shape), ("masked", masked_shape)):
            runs[kind] = measure(args, f"random:{shape}", kind, dtype)
            clear_model_cache()
            r = runs[kind]
            print(f"{kind:>6} task LM random:{shape:<19} step {r['time/step']:8.3f} s   reward {r['time/reward']:8.3f} s"
                  f"   sampling {r['time/sample']:.3f} s   update {r['time/update']:.3f} s   distinct prompts "
                  f"{r['distinct_prompts']:.1f}", flush=True)
        masked, causal = runs["masked"], runs["causal"]
        ratio = masked["time/step"] / causal["time/step"]
        overhead = masked["reward_pairs"] / masked["bare_forward"]
        print(f"  {masked_shape} / {causal_shape}: step {ratio:.2f}x, reward "
              f"{masked['time/reward'] / causal['time/reward']:.2f}x; masked reward on {args.prompts * args.examples} "
              f"pairs {masked['reward_pairs']:.3f} s against the bare forward {masked['bare_forward']:.3f} s "
              f"({overhead:.2f}x)")
        summary.append(f"{masked_shape}_s={masked['time/step']:.4f} {causal_shape}_s={causal['time/step']:.4f} "
                       f"ratio={ratio:.3f} masked_reward_overhead={overhead:.3f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    print(f"peak resident memory: {peak:.2f} GiB")
    if device.type == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB")
    print(" ".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
