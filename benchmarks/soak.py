"""Soak test: resident memory over a long RLPrompt run must level off after warm-up.

Runs soft Q-learning on SST-2 (the 16-shot split; accuracy reward, dev evaluation and checkpoints
on) for 1,000 steps on a tiny random model and 200 steps on the embedded SmolLM2-135M, sampling the
process's resident set size (RSS) about 100 times a run. After warm-up (the first ``--warmup``
fraction of the steps: models loaded, the example KV cache filled, allocator pools grown) RSS should
not grow by more than 5%: nothing may accumulate per step (the example cache is bounded, ``rewards/
bounded_cache.py``; the training curve adds one small dict a step). RSS swings by a few hundred MB
within a step (activations of the batched forwards), so the growth compares medians: the last
quarter of the samples after warm-up against the first quarter; the floor (the smallest sample of
each quarter) is reported too, since a leak lifts it.

    python benchmarks/soak.py --threads 1                      # both runs, ~25 min on one CPU core
    python benchmarks/soak.py --runs tiny --steps 300          # one run, other length

Prints a table and writes every sample to ``--output`` (JSON); exits 1 when a run grew too much.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from statistics import median
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RUNS = {"tiny": dict(model="tiny-gpt2", steps=1000, mlp_width=256),
        "embedded": dict(model="smollm2-135m", steps=200, mlp_width=2048)}
LIMIT = 0.05  # allowed growth after warm-up


def resident_bytes() -> int:
    """This process's resident set size now (Linux /proc; psutil elsewhere)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import psutil

        return psutil.Process().memory_info().rss


def soak(name: str, model: str, steps: int, mlp_width: int, args) -> dict:
    """One run; RSS sampled every ``args.sample_every`` steps through the trainer's ``on_log`` hook."""
    from rlprompt_interp.agents.rlprompt import RLPromptAgent
    from rlprompt_interp.rewards import TaskGapReward
    from rlprompt_interp.tasks import get_task
    from rlprompt_interp.tasks.sources import few_shot_source

    source, where = few_shot_source(args.data_dir)
    task = get_task("sst-2", **source)
    agent = RLPromptAgent(model=model, reward="gap=1", prompts_per_step=args.prompts_per_step,
                          examples_per_step=args.examples_per_step, lr=1e-3, mlp_width=mlp_width,
                          eval_every=args.eval_every, quiet=True)
    samples = []
    started = time.time()

    every = args.sample_every or max(1, steps // 100)

    def sample(row: dict) -> None:
        if row["step"] % every == 0 or row["step"] == 1:
            samples.append({"step": row["step"], "rss": resident_bytes(), "seconds": time.time() - started})

    with tempfile.TemporaryDirectory(prefix=f"soak-{name}-") as output:
        trainer = agent.build(task, prompt_length=args.prompt_length, steps=steps, seed=0, output_dir=output)
        trainer.on_log = sample
        print(f"{name}: {model}, {steps} steps x {args.prompts_per_step} prompts x {args.examples_per_step} examples "
              f"({where})", flush=True)
        trainer.train(progress=not args.quiet)
    rewards = [reward for _, reward in trainer.reward.terms if isinstance(reward, TaskGapReward)]
    warm_step = max(1, int(steps * args.warmup))
    after = [s["rss"] for s in samples if s["step"] >= warm_step]
    quarter = max(1, len(after) // 4)
    early, late = after[:quarter], after[-quarter:]
    return {"run": name, "model": model, "steps": steps, "warmup_steps": warm_step, "sample_every": every,
            "seconds": time.time() - started, "rss_start": samples[0]["rss"], "rss_early": median(early),
            "rss_late": median(late), "rss_peak_after_warmup": max(after), "growth": median(late) / median(early) - 1,
            "floor_growth": min(late) / min(early) - 1,
            "example_cache_entries": len(rewards[0]._examples) if rewards else None,
            "example_cache_bytes": rewards[0]._examples.bytes if rewards else None, "samples": samples}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", choices=list(RUNS), default=list(RUNS))
    parser.add_argument("--steps", type=int, help="steps of every run (default: tiny 1000, embedded 200)")
    parser.add_argument("--data-dir", default="auto", help="few-shot folder, hub, or auto (../shared/data/few-shot "
                                                           "when it exists)")
    parser.add_argument("--prompt-length", type=int, default=5)
    parser.add_argument("--prompts-per-step", type=int, default=8)
    parser.add_argument("--examples-per-step", type=int, default=16)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--sample-every", type=int, help="steps between RSS samples (default: steps / 100)")
    parser.add_argument("--warmup", type=float, default=0.2, help="fraction of the steps counted as warm-up")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default=str(ROOT / "runs" / "soak.json"))
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    import torch

    from rlprompt_interp.atomic import write_json_atomic
    from rlprompt_interp.cli.common import quiet_libraries

    torch.set_num_threads(args.threads)
    quiet_libraries()
    results = [soak(name, **{**RUNS[name], **({"steps": args.steps} if args.steps else {})}, args=args)
               for name in args.runs]
    mib = 1024 ** 2
    print(f"\n{'run':<9}{'model':<14}{'steps':>6}{'time s':>8}{'RSS start':>11}{'early':>9}{'late':>9}{'peak':>9}"
          f"{'growth':>9}{'floor gr.':>11}{'cache':>13}")
    for r in results:
        cache = f"{r['example_cache_entries']} / {r['example_cache_bytes'] / mib:.1f}M" if r["example_cache_bytes"] else "-"
        print(f"{r['run']:<9}{r['model']:<14}{r['steps']:>6}{r['seconds']:>8.0f}{r['rss_start'] / mib:>10.0f}M"
              f"{r['rss_early'] / mib:>8.0f}M{r['rss_late'] / mib:>8.0f}M{r['rss_peak_after_warmup'] / mib:>8.0f}M"
              f"{r['growth']:>+9.2%}{r['floor_growth']:>+11.2%}{cache:>13}")
    write_json_atomic(args.output, {"settings": vars(args), "limit": LIMIT, "results": results})
    print(f"samples written to {args.output}")
    grew = [r["run"] for r in results if max(r["growth"], r["floor_growth"]) >= LIMIT]
    if grew:
        print(f"resident memory grew by {LIMIT:.0%} or more after warm-up in: {', '.join(grew)}")
    return 1 if grew else 0


if __name__ == "__main__":
    sys.exit(main())
