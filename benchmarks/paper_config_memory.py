"""Peak memory of RLPrompt's paper configuration through the command a user runs.

The paper trains with distilgpt2 as policy and task LM and gpt2-xl as the perplexity scorer. The hub
serves both in fp32; this script writes random-initialised models of exactly their shapes as
ordinary model folders (fp32 safetensors, once, into ``--folders``), then runs

    rlprompt-interp train --model FOLDERS/distilgpt2 --scorer FOLDERS/gpt2-xl \\
        --reward gap=1,perplexity=0.01 --dtype D ...

in a fresh process per dtype and reports each one's peak resident memory (``wait4``'s maxrss), so
the figure covers the real load path (a folder on disk, not a model built in memory), every model
the run holds and its test evaluation. The last line is machine readable::

    peak_rss_gb_bfloat16=<float> peak_rss_gb_float32=<float>

    python benchmarks/paper_config_memory.py                                   # 16 x 32 x 5, 2 steps
    python benchmarks/paper_config_memory.py --prompts 2 --examples 4 --steps 1  # CPU without bf16 instructions
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHAPES = {"model": "distilgpt2", "scorer": "gpt2-xl"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folders", default=str(Path(tempfile.gettempdir()) / "rlprompt-paper-shapes"),
                        help="where the fp32 model folders are written (kept between runs)")
    parser.add_argument("--dtypes", nargs="+", default=["bfloat16", "float32"])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--examples", type=int, default=32)
    parser.add_argument("--prompt-length", type=int, default=5)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--no-test-eval", dest="test_eval", action="store_false",
                        help="skip train's test evaluation (on a slow machine)")
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "few-shot"))
    return parser.parse_args(argv)


def model_folders(root: Path) -> dict[str, Path]:
    """The paper models' shapes as fp32 folders, written once (a random model saved with save_pretrained)."""
    import torch

    from rlprompt_interp.models import random_shaped_model

    folders = {}
    for role, shape in SHAPES.items():
        folder = root / shape
        if not (folder / "config.json").is_file():
            started = time.time()
            model, tokenizer = random_shaped_model(shape, torch.float32)
            model.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
            del model
            print(f"wrote {folder} (fp32, {time.time() - started:.0f} s)", flush=True)
        folders[role] = folder
    return folders


def train_command(args, folders: dict[str, Path], dtype: str, output: str) -> list[str]:
    return ["rlprompt-interp", "train", "--agent", "rlprompt", "--task", "sst-2", "--data-dir", args.data_dir,
            "--model", str(folders["model"]), "--scorer", str(folders["scorer"]),
            "--reward", "gap=1,perplexity=0.01", "--dtype", dtype, "--prompt-length", str(args.prompt_length),
            "--prompts-per-step", str(args.prompts), "--examples-per-step", str(args.examples),
            "--steps", str(args.steps), "--eval-every", str(args.steps), "--output", output,
            *([] if args.test_eval else ["--no-test-eval"]), "--quiet"]


def peak_rss_gb(command: list[str]) -> tuple[float, float]:
    """(peak resident memory of the process in GB, its wall seconds)."""
    started = time.time()
    process = subprocess.Popen([sys.executable, "-m", "rlprompt_interp", *command[1:]], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the train command failed (exit {os.waitstatus_to_exitcode(status)}): {shlex.join(command)}")
    return usage.ru_maxrss * 1024 / 1e9, time.time() - started  # KiB -> GB


def main(argv=None) -> int:
    args = parse_args(argv)
    from rlprompt_interp.models import compute_record

    folders = model_folders(Path(args.folders))
    results = {}
    for dtype in args.dtypes:
        with tempfile.TemporaryDirectory(prefix="paper-memory-") as output:
            command = train_command(args, folders, dtype, output)
            print(f"$ {shlex.join(command)}", flush=True)
            results[dtype], seconds = peak_rss_gb(command)
        record = compute_record(dtype, "cpu")
        print(f"{dtype}: peak RSS {results[dtype]:.2f} GB ({results[dtype] * 1e9 / 2**30:.2f} GiB), {seconds:.0f} s "
              f"(CPU bf16 instructions: {'yes' if record['cpu_bf16'] else 'no'})", flush=True)
    print(" ".join(f"peak_rss_gb_{dtype}={value:.3f}" for dtype, value in results.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
