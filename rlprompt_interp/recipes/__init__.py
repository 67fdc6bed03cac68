"""Named recipes: config files that ``rlprompt-interp train --recipe NAME`` (or ``--config``) reads.

``embedded-sst2``: SST-2 on the embedded SmolLM2-135M with the LM prior, 100 steps on a CPU (README,
"Train a prompt"). ``rlprompt-paper``: RLPrompt's few-shot classification setting (Deng et al., 2022).
``demo-sst2``: ``make demo``'s few minutes on SST-2 (``experiments/demo.py``). ``rlprompt-roberta``: RLPrompt's
classification table, RoBERTa-large read at a cloze template's mask, distilgpt2 writing the prompts.
"""
