"""RLPrompt's classification reward, scored for N prompts x M examples in a few batched forwards.

For each (prompt, example) pair the task LM's next-token logits over the verbalizers give class
probabilities (softmax over the verbalizers only, as RLPrompt does); the pair's reward is the gap
``p(correct) - max p(other)``, times ``correct_coef`` (200) when the gap is positive and
``incorrect_coef`` (180) otherwise. A prompt's score is the mean over the classes of each class's mean
(``balance_classes``, the default: a batch that happens to hold one class more often does not favour
prompts that lean to it), or with ``balance_classes=False`` RLPrompt's mean over the examples; the logs
carry the accuracy (fraction of positive gaps). ``GAP_DEFAULTS`` holds these three defaults once, for
this class and for ``train``'s options (``RewardConfig``).

Speed: see ``prefix_cache``. Example-first templates cache each example's tokens for the whole
run; prompt-first templates cache each prompt's tokens for one call; templates with example text
on both sides of the prompt fall back to one full forward per pair (``scoring.next_token_logits``).
A masked task LM (RoBERTa) reads the class at the template's ``{mask}``; every token attends to the
prompt there, so each pair is one full forward too, batched by length (``scoring.mask_token_logits``).
A memo keeps the logits of every (prompt, example) pair scored (up to ``memo_size``, least
recently used dropped first), so no pair reaches the LM twice; ``state_dict`` carries it into
checkpoints, which keeps resumed runs bit-identical.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Sequence

import torch

from ..models import LoadedModel, load_lm
from ..notices import deprecated_names
from ..scoring import batched_next_token_logits, check_template, segment_example, template_mask
from ..tasks import ClassificationTask
from .base import PromptBatch, Reward, RewardError, RewardOutput
from .bounded_cache import DEFAULT_EXAMPLE_CACHE_BYTES, BoundedPrefixKVCache
from .prefix_cache import PrefixKVCache, cached_next_token_logits


def gap_reward(logits: torch.Tensor, labels: torch.Tensor, correct_coef: float = 200.0,
               incorrect_coef: float = 180.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pair ``(reward [..., M], correct [..., M])`` from verbalizer logits ``[..., M, C]`` and labels ``[M]``."""
    probs = logits.float().softmax(-1)
    label_mask = torch.nn.functional.one_hot(labels, probs.shape[-1]).bool().expand_as(probs)
    p_correct = probs.masked_fill(~label_mask, 0.0).sum(-1)
    p_other = probs.masked_fill(label_mask, float("-inf")).max(-1).values
    gap = p_correct - p_other
    correct = gap > 0
    scale = torch.where(correct, torch.tensor(correct_coef), torch.tensor(incorrect_coef))
    return gap * scale, correct


def class_balanced_mean(values: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``[..., M]`` -> ``[...]``: the mean over the classes present in ``labels`` of each class's mean value."""
    classes = labels.unique()
    members = (labels[None, :] == classes[:, None]).to(values.dtype)  # [K, M]
    return (values @ members.T / members.sum(-1)).mean(-1)


def batch_examples(batch: dict, fields: Sequence[str]) -> tuple[list[dict], torch.Tensor]:
    """Column-wise ``batch`` (``{"sentence": [...], "label": [...]}``) -> example dicts and labels ``[M]``."""
    missing = [name for name in (*fields, "label") if name not in batch]
    if missing:
        raise RewardError(f"the classification reward needs the columns {missing} in its batch; got {sorted(batch)}")
    size = len(batch["label"])
    examples = [{name: batch[name][i] for name in fields} for i in range(size)]
    return examples, torch.as_tensor(list(batch["label"]), dtype=torch.long)


GAP_DEFAULTS = {"correct_coef": 200.0, "incorrect_coef": 180.0, "balance_classes": True}


class TaskGapReward(Reward):
    """RLPrompt's probability-gap reward of a classification task under a frozen task LM (logged as
    ``gap``; its logs also carry the ``accuracy``, a different figure).

    ``batch`` holds the examples column-wise: the template's text fields and ``label``.
    Prompts' token ids (``PromptBatch.token_ids``) are used as they are when they decode to the
    prompt text under the task LM's tokenizer (policy and task LM share a tokenizer); otherwise
    the text is tokenised by the task LM. The example cache keeps the training examples seen
    (about 1 MB per 25-token example with SmolLM2-135M in fp32) within ``example_cache_bytes``
    (default 2 GiB; ``None``: unbounded), dropping the least recently used (``bounded_cache``).
    """

    name = "gap"

    def __init__(self, task: ClassificationTask, lm: LoadedModel | str = "auto", *,
                 correct_coef: float = GAP_DEFAULTS["correct_coef"], incorrect_coef: float = GAP_DEFAULTS["incorrect_coef"],
                 balance_classes: bool = GAP_DEFAULTS["balance_classes"], batch_size: int = 128,
                 use_cache: bool = True,
                 memo_size: int = 200_000, example_cache: PrefixKVCache | None = None,
                 example_cache_bytes: int | None = DEFAULT_EXAMPLE_CACHE_BYTES):
        self.task = task
        self.lm = load_lm(lm, role="task") if not isinstance(lm, LoadedModel) else lm
        check_template(task.template, self.lm)
        self.mask = template_mask(self.lm)  # what the template's {mask} is written as (None: no mask slot)
        self.correct_coef, self.incorrect_coef = correct_coef, incorrect_coef
        self.balance_classes = balance_classes
        self.batch_size = batch_size
        self.verbalizer_ids = task.verbalizer_ids(self.lm.tokenizer)
        self.fields = task.template.fields
        text = task.template.text
        slot = text.index("{prompt}")
        positions = [m.start() for name in self.fields for m in re.finditer(re.escape("{" + name + "}"), text)]
        self.layout = ("example_first" if slot > max(positions) else "prompt_first" if slot < min(positions)
                       else "mixed")
        if self.lm.is_encoder_decoder or not use_cache:
            self.layout = "full"
        if self.lm.is_masked_lm:
            self.layout = "masked"  # no state of an example can be reused across prompts: full forwards
        # example-first: kept for the whole run within example_cache_bytes. One example per forward, so its cached
        # states never depend on which examples happened to share its batch (a resumed run reproduces the same
        # floats); evaluation, which needs no bit-exact replay, passes a shared cache that encodes in batches
        self._examples = example_cache if example_cache is not None else BoundedPrefixKVCache(
            self.lm, max_bytes=example_cache_bytes, encode_batch_size=1)
        self._prompts = PrefixKVCache(self.lm, max_entries=4096)  # prompt-first: refilled every call
        # (prompt ids, example split) -> verbalizer logits: a policy that has settled writes the same prompts
        # again and again, and every dev evaluation re-scores the greedy prompt; each pair reaches the LM once
        self._memo: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self.memo_size, self.last_new_pairs = memo_size, 0

    def clear_cache(self) -> None:
        self._examples.clear()
        self.forget_scores()

    def forget_scores(self) -> None:
        """Empty the memo of scored pairs (the examples' key/value cache stays): the next call scores
        every pair again, as a benchmark of the forward pass needs."""
        self._memo.clear()

    def __repr__(self) -> str:
        return f"TaskGapReward({self.task.name}, {self.lm.spec})"

    # ------------------------------------------------------------------ prompt tokens

    def prompt_ids(self, prompts: PromptBatch) -> list[list[int]]:
        """Each prompt's task-LM token ids (the policy's ids when the tokenizers agree)."""
        ids = getattr(prompts, "token_ids", None)
        tokenizer = self.lm.tokenizer
        if ids is not None and all(tokenizer.decode(row) == text for row, text in zip(ids, prompts)):
            return [list(row) for row in ids]
        return [tokenizer.encode(text, add_special_tokens=False) for text in prompts]

    def _space_first(self, ids: Sequence[int]) -> bool:
        return bool(ids) and self.lm.tokenizer.decode(list(ids[:1]))[:1].isspace()

    # ------------------------------------------------------------------ scoring

    def verbalizer_logits(self, prompt_ids: Sequence[Sequence[int]], examples: Sequence[dict]) -> torch.Tensor:
        """Logits ``[N, M, C]`` of the verbalizers for every (prompt, example) pair (no memo)."""
        splits = [self.task.template.split(example, self.mask) for example in examples]
        pairs = [(tuple(ids), split) for ids in prompt_ids for split in splits]
        return self.pair_logits(pairs).view(len(prompt_ids), len(examples), -1)

    def pair_logits(self, pairs: Sequence[tuple[tuple[int, ...], tuple[str, str]]]) -> torch.Tensor:
        """Logits ``[B, C]`` of ``(prompt ids, (text before, text after the slot))`` pairs (one full forward
        each, sorted by length into batches, unless the layout lets a prefix's states be reused)."""
        if self.layout == "example_first":
            return self._example_first(pairs)
        if self.layout == "prompt_first":
            return self._prompt_first(pairs)
        segments, sequences = {}, []
        for ids, split in pairs:
            key = (split, self._space_first(ids))  # all segment_example reads of the prompt: its leading space
            if key not in segments:
                segments[key] = segment_example(self.lm, *split, ids)
            before, after = segments[key]
            sequences.append(before + list(ids) + after)
        return batched_next_token_logits(self.lm, sequences, self.verbalizer_ids, self.batch_size)

    def _example_first(self, pairs) -> torch.Tensor:
        # Per example: its ids with the template's space before the slot kept or dropped (segment_example
        # drops it before a prompt that starts with a space); the common part is cached once.
        variants = {}
        for _, split in pairs:
            if split not in variants:
                before, after = split
                keep = segment_example(self.lm, before, after)
                drop = segment_example(self.lm, before, after, [self._space_token()]) if before.endswith(" ") else keep
                common = _common_prefix_length(keep[0], drop[0])
                if common == 0:
                    raise RewardError(f"cannot cache an example with no text before the prompt: {before!r}")
                variants[split] = (tuple(keep[0][:common]), keep[0][common:], drop[0][common:], keep[1])
        keys, suffixes = [], []
        for ids, split in pairs:
            prefix, tail_keep, tail_drop, after_ids = variants[split]
            suffix = (tail_drop if self._space_first(ids) else tail_keep) + list(ids) + after_ids
            keys.append(prefix)  # an empty suffix (no prompt at the very end) reads the prefix's own logits
            suffixes.append(suffix)
        self._examples.add({key: list(key) for key in dict.fromkeys(keys)})
        return cached_next_token_logits(self._examples, keys, suffixes, self.verbalizer_ids, self.batch_size)

    def _prompt_first(self, pairs) -> torch.Tensor:
        # The text before the slot is the same for every example; each prompt (with it) is cached per call.
        prefixes = {}
        for ids, (before, _) in pairs:
            if ids not in prefixes:
                prefixes[ids] = tuple(segment_example(self.lm, before, "", ids)[0] + list(ids))
        keys, suffixes = [], []
        for ids, (before, after) in pairs:
            _, a = segment_example(self.lm, before, after, ids)
            if not a:
                raise RewardError("a prompt-first template needs text after the prompt")
            prefix = prefixes[ids] or tuple(a[:1])  # no prompt and nothing before it: the example's first token
            keys.append(prefix)
            suffixes.append(a[len(prefix) - len(prefixes[ids]):])
        self._prompts.clear()
        self._prompts.add({prefix: list(prefix) for prefix in dict.fromkeys(keys)})
        return cached_next_token_logits(self._prompts, keys, suffixes, self.verbalizer_ids, self.batch_size)

    def _space_token(self) -> int:
        if not hasattr(self, "_space_id"):
            ids = self.lm.tokenizer.encode(" a", add_special_tokens=False)
            self._space_id = ids[0]
            if not self._space_first([self._space_id]):
                self._space_id = self.lm.tokenizer.encode(" ", add_special_tokens=False)[0]
        return self._space_id

    def memoised_logits(self, prompt_rows: Sequence[tuple[int, ...]], examples: Sequence[dict]) -> torch.Tensor:
        """``verbalizer_logits`` through the memo: only pairs never scored before reach the LM."""
        splits = [self.task.template.split(example, self.mask) for example in examples]
        pairs = [(ids, split) for ids in prompt_rows for split in splits]
        missing = [pair for pair in dict.fromkeys(pairs) if pair not in self._memo]
        self.last_new_pairs = len(missing)
        if missing:
            for pair, row in zip(missing, self.pair_logits(missing)):
                self._memo[pair] = row
            while len(self._memo) > self.memo_size:
                self._memo.popitem(last=False)
        rows = []
        for pair in pairs:
            self._memo.move_to_end(pair)
            rows.append(self._memo[pair])
        return torch.stack(rows).view(len(prompt_rows), len(examples), -1)

    def __call__(self, prompts: PromptBatch, batch: dict) -> RewardOutput:
        examples, labels = batch_examples(batch, self.fields)
        if not examples:
            raise RewardError("the classification reward got a batch with no examples")
        rows = [tuple(ids) for ids in self.prompt_ids(prompts)]
        logits = self.memoised_logits(rows, examples)  # [N, M, C]
        rewards, correct = gap_reward(logits, labels, self.correct_coef, self.incorrect_coef)  # [N, M]
        accuracy = correct.float().mean(-1)  # [N]
        score = class_balanced_mean(rewards, labels) if self.balance_classes else rewards.mean(-1)
        return RewardOutput(score, {"accuracy": float(accuracy.mean()), "accuracy/per_prompt": accuracy,
                                               "accuracy/new_pairs": self.last_new_pairs})

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict:
        """The memo, so a resumed run scores the same pairs from memory as an uninterrupted one."""
        pairs = list(self._memo)
        return {"memo_prompts": [list(ids) for ids, _ in pairs], "memo_splits": [list(split) for _, split in pairs],
                "memo_logits": torch.stack(list(self._memo.values())) if pairs else torch.zeros(0)}

    def load_state_dict(self, state: dict) -> None:
        self._memo.clear()
        for ids, split, row in zip(state["memo_prompts"], state["memo_splits"], state["memo_logits"]):
            self._memo[(tuple(ids), tuple(split))] = row


RENAMED = {"ClassificationReward": ("TaskGapReward", TaskGapReward), "TaskAccuracy": ("TaskGapReward", TaskGapReward)}
__getattr__ = deprecated_names(__name__, RENAMED)  # the names it had before, with a warning


def _common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    length = 0
    for x, y in zip(a, b):
        if x != y:
            break
        length += 1
    return length
