"""``rlprompt-interp unembed``: the nearest vocabulary tokens of each position of a learned prompt.

The readout of Figures 2-5 of "Interpreting Prompt-Tuning Across SuperGLUE Tasks": a soft prompt's
own embeddings, or a discrete prompt's tokens' embeddings, against the task LM's vocabulary.
"""

from __future__ import annotations

import argparse

from ..atomic import write_json_atomic
from ..metrics.similarity import prompt_matrix
from ..prompts import task_model
from .common import add_dtype_argument


def cmd_unembed(args: argparse.Namespace) -> int:
    from ..metrics.report import format_readout_row, nearest_tokens
    from ..models import load_lm
    from ..prompts import LearnedPrompt

    prompt = LearnedPrompt.load(args.learned)
    lm = load_lm(task_model(prompt, args.model), role="task", dtype=args.dtype)
    rows = nearest_tokens(prompt_matrix(prompt, lm), lm, args.metric, args.top_k)
    kind = "soft prompt" if prompt.is_soft else "discrete prompt (its tokens' embeddings)"
    print(f"{args.learned}: {kind}, {len(rows)} positions, model {lm.spec}; nearest tokens by {args.metric}, "
          f"top {args.top_k} (best first)")
    for row in rows:
        print(format_readout_row(row))
    print("top-1 text: " + repr(lm.tokenizer.decode([row["token_ids"][0] for row in rows])))
    if args.output:
        write_json_atomic(args.output, {"learned": str(args.learned), "model": lm.spec, "metric": args.metric, "rows": rows})
    return 0


def register(commands) -> None:
    from ..metrics.unembed import METRICS

    unembed = commands.add_parser("unembed", help="nearest vocabulary tokens of each position of a learned prompt")
    unembed.add_argument("--learned", required=True, metavar="DIR", help="a learned prompt folder")
    unembed.add_argument("--model", default="auto", help="task LM whose vocabulary is searched (auto: the prompt's)")
    unembed.add_argument("--metric", default="cosine", choices=METRICS, help="how nearness to a token is measured")
    unembed.add_argument("--top-k", type=int, default=3, help="nearest tokens listed per position")
    add_dtype_argument(unembed)
    unembed.add_argument("--output", help="write the readout as JSON here")
    unembed.set_defaults(run=cmd_unembed)
