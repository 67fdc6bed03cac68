"""Seconds per RLPrompt training step, by phase, against the bare task-LM forward it cannot avoid.

A step (``SQLTrainer.train_step``) is: the policy writes N prompts of L tokens through the
environment (``sample``), the environment's reward scores N x M (prompt, example) pairs with the
task LM (``reward: task LM``) and the prompts' perplexity with the scorer (``reward: scorer``), and
soft Q-learning updates the MLP (``update``: loss + backward + Adam). Each is the median over
``--steps`` steps after ``--warmup`` steps. Every step starts from the same untrained policy (its
MLP, target network and optimiser restored; the random streams run on), with the learning rate
``train`` uses, so each timed step scores as many distinct prompts as the first steps of a real
run: a policy that collapses onto a few prompts would let the reward's memo serve most pairs and
time a step no user runs. The script prints the ``train`` command its step corresponds to, and
``--train-steps LO HI`` runs that command and reports its own step, ``(t_HI - t_LO) / (HI - LO)``
from the run's curve (model loading, dev evaluations before LO and the test evaluation excluded).

In the same process the script times the **bare task-LM forward over exactly one step's prompt
tokens**: the same N x M pairs (example tokens, then the prompt and what follows it), the
examples' key/value states prepared beforehand, nothing but ``model.base_model(...)`` timed. The
classification reward on the same pairs (its memo emptied) divided by that is the reward's
overhead; both use the untrained policy's prompts, all distinct (a settled policy repeats prompts,
which the reward scores once). The bare forward gives every pair its own row; the reward runs each
example's prompts as a trie, so prompts that begin alike can bring the ratio below 1. It also times the same step without the environment (policy.sample
+ one reward call) to show what driving ``PromptVectorEnv`` costs: from the same trainer state
(policy, random draws, examples) as the environment's step, so both write and score the same
prompts, the reward's memo emptied before each. Where bf16 is fast
on the device (a GPU, a
CPU with AMX / AVX512-BF16), the fp32/bf16 ratio of a whole step. The last line is machine
readable::

    step_time_s=<float> reward_s=<float> bare_forward_s=<float> reward_overhead=<float> bf16_speedup=<float or na>
    train_step_s=<float or na>

    python benchmarks/step_time.py                                      # embedded SmolLM2, 16 x 32 x 5
    python benchmarks/step_time.py --shape distilgpt2 --prompts 16 --examples 32
    python benchmarks/step_time.py --device cuda --shape distilgpt2 --scorer-shape gpt2-xl --dtype bf16
    python benchmarks/step_time.py --shape distilgpt2 --dtype fp32 --train-steps 2 10   # + train's own step
"""

from __future__ import annotations

import argparse
import copy
import math
import resource
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rlprompt_interp.models import bf16_available, dtype_name, load_lm, resolve_dtype  # noqa: E402

PAPER_STEPS = 12_000  # RLPrompt's few-shot classification budget


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m", help="policy and task LM (ignored with --shape)")
    parser.add_argument("--shape", help="a random model of this shape as policy and task LM (e.g. distilgpt2)")
    parser.add_argument("--scorer", help="perplexity scorer LM (default: the task LM)")
    parser.add_argument("--scorer-shape", help="a random scorer of this shape (e.g. gpt2-xl)")
    parser.add_argument("--reward", default="gap=1,perplexity=0.01")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--examples", type=int, default=32)
    parser.add_argument("--prompt-length", type=int, default=5)
    parser.add_argument("--dtype", default="auto", help="auto (bf16 where fast, else fp32), fp32 or bf16")
    parser.add_argument("--lr", type=float, help="the policy's learning rate (default: the one train uses)")
    parser.add_argument("--train-steps", type=int, nargs=2, metavar=("LO", "HI"),
                        help="also run the corresponding train command for HI steps and report (t_HI - t_LO)/(HI - LO)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: what accelerate picks)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--no-compare-dtypes", dest="compare_dtypes", action="store_false",
                        help="skip the fp32 run that bf16_speedup needs (e.g. when measuring peak memory)")
    parser.add_argument("--no-direct", dest="direct", action="store_false",
                        help="skip the step without the environment (halves the run, e.g. for peak memory)")
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "few-shot"))
    return parser.parse_args(argv)


def spec(args, shape_flag: str, model_flag: str) -> str:
    shape, model = getattr(args, shape_flag), getattr(args, model_flag)
    return f"random:{shape}" if shape else model


def training_data(args, task) -> dict:
    """``--examples`` training rows (SST-2's 32 few-shot ones, repeated if more are asked for)."""
    data = task.load_split("train")
    rows = [i % len(data) for i in range(args.examples)]
    return {"sentence": [data[i]["sentence"] for i in rows], "label": [data[i]["label"] for i in rows]}


def build_trainer(args, task, dtype):
    from rlprompt_interp.agents.rlprompt import RLPromptAgent

    model = spec(args, "shape", "model")
    scorer = spec(args, "scorer_shape", "scorer") if (args.scorer or args.scorer_shape) else model
    agent = RLPromptAgent(model=model, scorer=scorer, reward=args.reward, prompts_per_step=args.prompts,
                          examples_per_step=args.examples, lr=args.lr, eval_every=0, dtype=dtype, quiet=True)
    for role, name in (("task", model), ("scorer", scorer)):
        load_lm(name, role=role, device=args.device, dtype=dtype)  # on the requested device, shared by the agent
    trainer = agent.build(task, prompt_length=args.prompt_length, steps=10**9, seed=0)
    trainer.env.scorer.data = trainer.train_data = training_data(args, task)
    return trainer


def classification_term(trainer):
    from rlprompt_interp.rewards import TaskGapReward

    return next(r for _, r in trainer.reward.terms if isinstance(r, TaskGapReward))


def time_steps(args, trainer) -> dict:
    """Median seconds of the whole step and of each phase, environment path and direct path interleaved."""
    from rlprompt_interp.rewards import PromptBatch

    def direct_step():
        rollout = trainer.policy.sample(args.prompts, args.prompt_length, generator=trainer.generator)
        texts = trainer.policy.decode(rollout.token_ids)
        out = trainer.reward(PromptBatch(texts, rollout.token_ids.tolist()), trainer.env.scorer.batch(trainer.env.np_random))
        trainer.update(rollout, out.scores)

    memo = classification_term(trainer)
    untrained = copy.deepcopy({"mlp": trainer.policy.mlp.state_dict(), "target": trainer.target.state_dict(),
                               "optimizer": trainer.optimizer.state_dict()})
    write_prompts, distinct = trainer.write_prompts, []

    def counting_write_prompts(env, **options):
        rollout, scores, info = write_prompts(env, **options)
        distinct.append(len({tuple(ids) for ids in rollout.token_ids.tolist()}))
        return rollout, scores, info

    trainer.write_prompts = counting_write_prompts
    rows, direct = [], []
    for step in range(args.warmup + args.steps):
        trainer.policy.mlp.load_state_dict(untrained["mlp"])  # the untrained policy samples as a run's first step
        trainer.target.load_state_dict(untrained["target"])
        trainer.optimizer.load_state_dict(untrained["optimizer"])
        memo.forget_scores()  # each path scores all its pairs: none left over from the other path's step
        before = copy.deepcopy(trainer.state_dict()) if args.direct else None
        sync(args)
        started = time.perf_counter()
        logs = trainer.train_step().logs
        sync(args)
        logs["time/step"] = time.perf_counter() - started
        started = time.perf_counter()  # (nothing timed without --direct)
        if args.direct:  # the same step again from the same state: same policy, same draws, same examples
            trainer.load_state_dict(before)
            started = time.perf_counter()
            direct_step()
            sync(args)
        if step >= args.warmup:
            rows.append(logs)
            direct.append(time.perf_counter() - started)
    keys = ("time/step", "time/sample", "time/reward", "time/gap", "time/perplexity", "time/log-perplexity",
            "time/update")
    medians = {key: statistics.median(r[key] for r in rows) for key in keys if key in rows[0]}
    medians["time/direct_step"] = statistics.median(direct) if args.direct else math.nan
    medians["distinct_prompts"] = statistics.mean(distinct[args.warmup:])
    return medians


def sync(args) -> None:
    if torch.cuda.is_available() and (args.device or "").startswith("cuda"):
        torch.cuda.synchronize()


def pair_rows(cache, prefix_keys, suffixes) -> dict:
    """The task LM's inputs for one row per (prefix, suffix) pair after the cached prefixes: the plain
    batched forward, which recomputes a beginning that several suffixes share (the reward's tries do not)."""
    from rlprompt_interp.models import cache_argument

    lm = cache.lm
    past, prefix_mask, prefix_lengths = cache.batch(prefix_keys)
    width = max(len(s) for s in suffixes)
    input_ids = torch.full((len(suffixes), width), lm.tokenizer.pad_token_id, dtype=torch.long)
    suffix_mask = torch.zeros((len(suffixes), width), dtype=torch.long)
    for row, ids in enumerate(suffixes):  # right padding: real suffix tokens never see the pads
        input_ids[row, :len(ids)] = torch.as_tensor(list(ids))
        suffix_mask[row, :len(ids)] = 1
    positions = prefix_lengths[:, None] + torch.arange(width, device=lm.device)[None, :]
    return dict(input_ids=input_ids.to(lm.device), attention_mask=torch.cat([prefix_mask, suffix_mask.to(lm.device)], 1),
                position_ids=positions, use_cache=True, **cache_argument(lm.model.base_model, past))


@torch.inference_mode()
def bare_forward_vs_reward(args, trainer, task) -> tuple[float, float]:
    """(seconds of the bare task-LM forward over one step's pairs, seconds of the reward on them)."""
    from rlprompt_interp.rewards import PromptBatch
    from rlprompt_interp.rewards.prefix_cache import PrefixKVCache
    from rlprompt_interp.scoring import segment_example

    reward = classification_term(trainer)
    lm = reward.lm
    # the untrained policy's prompts, all distinct, as in a run's first steps (a policy that has settled repeats
    # prompts, which the reward scores once and a bare forward would not)
    rollout = trainer.policy.sample(args.prompts, args.prompt_length, generator=torch.Generator().manual_seed(1))
    prompt_ids = rollout.token_ids.tolist()
    distinct = len(set(map(tuple, prompt_ids)))
    if distinct < len(prompt_ids):
        print(f"note: {distinct} distinct prompts of {len(prompt_ids)}; the bare forward scores every pair")
    batch = training_data(args, task)
    pairs = []  # (example prefix ids, suffix ids): exactly the token sequences the reward scores
    for ids in prompt_ids:
        for sentence in batch["sentence"]:
            before, after = task.template.split({"sentence": sentence})
            b, a = segment_example(lm, before, after, ids)
            pairs.append((tuple(b), list(ids) + a))
    examples = PrefixKVCache(lm)  # each example encoded once, outside the timing (the reward caches them too)
    examples.add({prefix: list(prefix) for prefix, _ in pairs})
    seconds = 0.0
    for start in range(0, len(pairs), reward.batch_size):
        chunk = pairs[start:start + reward.batch_size]
        inputs = pair_rows(examples, [p for p, _ in chunk], [s for _, s in chunk])
        sync(args)
        started = time.perf_counter()
        lm.model.base_model(**inputs)
        sync(args)
        seconds += time.perf_counter() - started
    texts = trainer.policy.decode(prompt_ids)
    reward(PromptBatch(texts, prompt_ids), batch)  # encodes any example not cached yet
    reward.forget_scores()
    sync(args)
    started = time.perf_counter()
    reward(PromptBatch(texts, prompt_ids), batch)
    sync(args)
    return seconds, time.perf_counter() - started


def train_command(args, dtype: torch.dtype, output: str, steps: int = 1000, eval_every: int = 50) -> list[str]:
    """The ``rlprompt-interp train`` command whose step this benchmark times."""
    model = spec(args, "shape", "model")
    scorer = spec(args, "scorer_shape", "scorer") if (args.scorer or args.scorer_shape) else model
    return ["rlprompt-interp", "train", "--agent", "rlprompt", "--task", "sst-2", "--data-dir", args.data_dir,
            "--model", model, "--scorer", scorer, "--reward", args.reward, "--prompt-length", str(args.prompt_length),
            "--prompts-per-step", str(args.prompts), "--examples-per-step", str(args.examples),
            "--dtype", dtype_name(dtype), *(["--lr", str(args.lr)] if args.lr else []), "--steps", str(steps),
            "--eval-every", str(eval_every), "--output", output]


def train_step_seconds(args, dtype: torch.dtype) -> float:
    """``train``'s own step: the command above for HI + 1 steps (its one dev evaluation after step HI),
    timed as ``(t_HI - t_LO) / (HI - LO)`` from the curve's elapsed times."""
    import json
    import os
    import subprocess
    import tempfile

    low, high = args.train_steps
    with tempfile.TemporaryDirectory(prefix="step-time-") as folder:
        command = train_command(args, dtype, folder, steps=high + 1, eval_every=high + 1) + ["--no-test-eval", "--quiet"]
        command[0:1] = [sys.executable, "-m", "rlprompt_interp"]
        env = {**os.environ, **({"OMP_NUM_THREADS": str(args.threads)} if args.threads else {})}
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
        curve = json.loads(Path(folder, "prompt.json").read_text())["curve"]
    elapsed = {row["step"]: row["time"] for row in curve}
    return (elapsed[high] - elapsed[low]) / (high - low)


def measure(args, task, dtype) -> dict:
    trainer = build_trainer(args, task, dtype)
    bare_forward, reward_pairs = bare_forward_vs_reward(args, trainer, task)  # before training: distinct prompts
    result = time_steps(args, trainer)
    result["bare_forward"], result["reward_pairs"] = bare_forward, reward_pairs
    result["dtype"] = str(trainer.policy.lm.dtype).replace("torch.", "")
    return result


def set_up(args) -> tuple[torch.device, torch.dtype]:
    """Quiet libraries, ``--threads``, and the device and dtype a benchmark runs in (``args.device`` resolved)."""
    from rlprompt_interp.cli.common import quiet_libraries
    from rlprompt_interp.models import default_device

    quiet_libraries()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else default_device()
    args.device = str(device)
    return device, resolve_dtype(args.dtype, device)


def main(argv=None) -> int:
    args = parse_args(argv)
    from rlprompt_interp.tasks import get_task

    device, dtype = set_up(args)
    task = get_task("sst-2", data_dir=args.data_dir)
    print(f"device={device} dtype={str(dtype).replace('torch.', '')} threads={torch.get_num_threads()} "
          f"policy/task LM={spec(args, 'shape', 'model')} scorer={spec(args, 'scorer_shape', 'scorer') or 'task LM'} "
          f"reward={args.reward} prompts={args.prompts} examples={args.examples} prompt_length={args.prompt_length}",
          flush=True)
    main_run = measure(args, task, dtype)
    speedup = "na"
    if args.compare_dtypes and bf16_available(device):
        other = measure(args, task, torch.float32 if dtype == torch.bfloat16 else torch.bfloat16)
        fp32, bf16 = (main_run, other) if dtype == torch.float32 else (other, main_run)
        speedup = f"{fp32['time/step'] / bf16['time/step']:.3f}"
        print(f"fp32 step {fp32['time/step']:.3f} s, bf16 step {bf16['time/step']:.3f} s")
    r = main_run
    print(f"\nmedian of {args.steps} steps after {args.warmup} warm-up ({r['dtype']}):")
    for key, label in (("time/step", "whole step"), ("time/sample", "  policy sampling"),
                       ("time/reward", "  reward (environment call)"), ("time/gap", "    task LM"),
                       ("time/perplexity", "    scorer"), ("time/log-perplexity", "    scorer"),
                       ("time/update", "  loss + backward + optimiser")):
        if key in r:
            print(f"  {label:<32} {r[key]:8.3f} s")
    if args.direct:
        print(f"  {'same step without the env':<32} {r['time/direct_step']:8.3f} s "
              f"(env path / direct path {r['time/step'] / r['time/direct_step']:.3f})")
    overhead = r["reward_pairs"] / r["bare_forward"]
    pairs = args.prompts * args.examples
    print(f"task-LM reward on {pairs} pairs: {r['reward_pairs']:.3f} s; bare forward over their prompt tokens "
          f"{r['bare_forward']:.3f} s; overhead {overhead:.2f}x")
    print(f"the train command of this step: {shlex.join(train_command(args, dtype, 'runs/step-time'))}")
    print(f"distinct prompts per timed step: {r['distinct_prompts']:.1f} of {args.prompts}")
    train_step = "na"
    if args.train_steps:
        train_step = f"{train_step_seconds(args, dtype):.4f}"
        low, high = args.train_steps
        print(f"that command's own step, (t_{high} - t_{low}) / {high - low}: {train_step} s")
    print(f"projected {PAPER_STEPS:,} steps (RLPrompt's SST-2 budget): {r['time/step'] * PAPER_STEPS / 3600:.1f} h")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    print(f"peak resident memory: {peak:.2f} GiB")
    if device.type == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB")
    print(f"step_time_s={r['time/step']:.4f} reward_s={r['reward_pairs']:.4f} bare_forward_s={r['bare_forward']:.4f} "
          f"reward_overhead={overhead:.3f} bf16_speedup={speedup} train_step_s={train_step}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
