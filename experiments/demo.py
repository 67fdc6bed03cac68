"""The README's main job: SST-2 accuracy of the embedded default model, offline, on CPU.

Scores the SST-2 test set with no prompt (template "{sentence} {prompt}", verbalizers
" terrible"/" great") and with a hand-written template, to show the headroom a learned prompt has.
"""

import argparse

from rlprompt_interp.cli import quiet_libraries
from rlprompt_interp.evaluation import evaluate_text_prompt
from rlprompt_interp.models import load_lm
from rlprompt_interp.tasks import get_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", default="../shared/data/few-shot")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--limit", type=int, default=400, help="score the first N test examples (0: all 1821)")
    args = parser.parse_args()
    quiet_libraries()

    lm = load_lm(args.model, role="task")
    plain = get_task("sst-2", data_dir=args.data_dir)
    handwritten = plain.with_options(template="Review: {sentence}\nSentiment:{prompt}",
                                     verbalizers=[" negative", " positive"])
    for label, task in (("no prompt", plain), ("hand-written template", handwritten)):
        report = evaluate_text_prompt(task, lm, "", split="test", limit=args.limit or None)
        print(f"\n[{label}] {task.template.text!r} verbalizers={list(task.verbalizers)}")
        print(report.format())


if __name__ == "__main__":
    main()
