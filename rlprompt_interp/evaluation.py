"""Task accuracy of a prompt: the same code for every agent's prompts, so tables compare like with like."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Protocol, Sequence

import torch
from tqdm.auto import tqdm

from .models import LoadedModel, compute_record, describe_compute
from .rewards.bounded_cache import BoundedPrefixKVCache
from .rewards.classification import TaskGapReward
from .scoring import (batched_by_length, batched_next_token_logits, check_template, encode_texts, segment_example,
                      soft_prompt_logits, template_mask)
from .tasks import ClassificationTask


class ScoredPrompt(Protocol):
    """What scoring reads of a learned prompt (``prompts.LearnedPrompt``, which every agent returns): its text for
    reports, its token ids, or its embeddings for a soft prompt. (Scoring does not import ``prompts``, whose
    ``LearnedPrompt.classify`` calls it.)"""

    text: str
    token_ids: Sequence[int] | None
    embeddings: torch.Tensor | None

    @property
    def is_soft(self) -> bool: ...


@dataclass(frozen=True)
class _NoPrompt:
    """The empty prompt, scored as a learned prompt of no tokens: the same tokens as the empty text, and the shared
    example cache serves it."""

    text: str = ""
    token_ids: tuple = ()
    embeddings: None = None
    is_soft: bool = False


NO_PROMPT = _NoPrompt()


@dataclass
class ClassificationReport:
    """Accuracy overall and per true class, and how often each class was predicted."""

    task: str
    split: str
    prompt: str
    num_examples: int
    accuracy: float
    per_class_accuracy: dict[str, float]
    predicted_fraction: dict[str, float]
    # the mean of the per-class accuracies: what a prompt scores on a split with as many examples of each class.
    # 16-shot training and dev splits are balanced, some test splits are not (TREC's: 28% descriptions, 2%
    # abbreviations), and a prompt biased to the large classes gains accuracy there without reading the text
    balanced_accuracy: float = float("nan")
    subset: str | None = None  # how a --limit subset was drawn; None: the whole split
    computed_with: dict = field(default_factory=dict)  # dtype, device, bf16 CPU: what produced the figure
    extra: dict = field(default_factory=dict)
    # per example, in split order: 1 where the prediction is right. For paired comparisons of prompts on the same
    # examples (sweep_report's bootstrap); left out of to_dict and format, which stay one screen long.
    correct: list[int] | None = field(default=None, repr=False)
    predicted: list[int] | None = field(default=None, repr=False)  # per example: the predicted class index

    def to_dict(self) -> dict:
        return {key: value for key, value in asdict(self).items() if key not in ("correct", "predicted")}

    def format(self) -> str:
        lines = [f"task={self.task} split={self.split} n={self.num_examples} prompt={self.prompt!r}"
                 + (f"\nexamples: {self.subset}" if self.subset else "")
                 + (f"\ncomputed in {describe_compute(self.computed_with)}" if self.computed_with else ""),
                 f"accuracy      {self.accuracy:.4f}   balanced (mean over classes) {self.balanced_accuracy:.4f}"]
        for name, acc in self.per_class_accuracy.items():
            lines.append(f"  {name:<18} accuracy {acc:.4f}   predicted {self.predicted_fraction[name]:.3f}")
        return "\n".join(lines)


def _mean_of_present(values) -> float:
    """The mean of the figures that are not NaN (a class absent from the split has none); NaN if none is."""
    present = [v for v in values if v == v]
    return sum(present) / len(present) if present else float("nan")


def summarise(task: ClassificationTask, split: str, prompt: str, predictions: Sequence[int],
              labels: Sequence[int], subset: str | None = None, *, lm: LoadedModel | None = None) -> ClassificationReport:
    """Accuracy figures from predicted and true class indices (``lm``: the model that predicted them,
    whose dtype and device the report records; ``correct`` keeps which examples it got right)."""
    predictions, labels = torch.as_tensor(list(predictions)), torch.as_tensor(list(labels))
    n = len(labels)
    per_class, predicted = {}, {}
    for index, name in enumerate(task.label_names):
        of_class = labels == index
        per_class[name] = float((predictions[of_class] == index).float().mean()) if of_class.any() else float("nan")
        predicted[name] = float((predictions == index).float().mean())
    return ClassificationReport(task=task.name, split=split, prompt=prompt, num_examples=n,
                                accuracy=float((predictions == labels).float().mean()),
                                balanced_accuracy=_mean_of_present(per_class.values()),
                                per_class_accuracy=per_class, predicted_fraction=predicted, subset=subset,
                                computed_with=compute_record(lm.dtype, lm.device) if lm is not None else {},
                                correct=(predictions == labels).int().tolist(), predicted=predictions.tolist())


def evaluate_prompt(task: ClassificationTask, lm: LoadedModel, prompt: str | ScoredPrompt, *, split: str = "test",
                    limit: int | None = None, batch_size: int = 32, progress: bool = True) -> ClassificationReport:
    """Accuracy of a text prompt, a discrete learned prompt (its token ids) or a soft prompt (its embeddings)."""
    examples = task.load_split(split, limit=limit)
    logits = class_logits(task, lm, without_empty_text(prompt), examples, batch_size=batch_size, progress=progress,
                          desc=f"eval {task.name}/{split}")
    return summarise(task, split, prompt if isinstance(prompt, str) else prompt.text, logits.argmax(-1).tolist(),
                     examples["label"], task.subset_note(split, limit), lm=lm)


def without_empty_text(prompt: str | ScoredPrompt) -> str | ScoredPrompt:
    """No prompt (``""``) as ``NO_PROMPT``, a learned prompt of no tokens."""
    return NO_PROMPT if prompt == "" else prompt


def class_logits(task: ClassificationTask, lm: LoadedModel, prompt: str | ScoredPrompt, examples, *,
                 batch_size: int = 32, progress: bool = True, desc: str | None = None) -> torch.Tensor:
    """The verbalizers' next-token logits ``[N, C]`` after each example with ``prompt`` in the template's slot:
    what ``eval`` scores and ``predict`` labels with. A text prompt is placed as text (tokenised with the
    example); a learned prompt as its token ids or embeddings (``prompt_logits``). The verbalizers and the
    template (a ``{mask}`` for a masked LM, none for a causal one) are checked before the progress bar shows;
    a masked LM is read at the mask instead of the next token."""
    check_template(task.template, lm)
    verbalizer_ids = task.verbalizer_ids(lm.tokenizer)
    with tqdm(total=len(examples), desc=desc, unit="ex", disable=not progress) as bar:
        if isinstance(prompt, str):
            sequences = encode_texts(lm, [task.format(example, prompt, template_mask(lm)) for example in examples])
            return batched_next_token_logits(lm, sequences, verbalizer_ids, batch_size, progress=bar.update)
        return prompt_logits(task, lm, prompt, examples, verbalizer_ids, batch_size, progress=bar.update)


def prompt_logits(task: ClassificationTask, lm: LoadedModel, prompt: ScoredPrompt, examples, token_ids: Sequence[int],
                  batch_size: int = 32, progress=None) -> torch.Tensor:
    """Next-token logits ``[N, len(token_ids)]`` after each example with a learned prompt in the slot.

    Soft prompts (``prompt.embeddings``) are fed as embeddings; discrete ones as their token ids,
    never re-tokenised. ``progress`` is an optional callable taking the number of examples done. A masked
    LM is read at the template's mask instead of the next token.
    """
    check_template(task.template, lm)
    splits = [task.template.split(example, template_mask(lm)) for example in examples]
    if prompt.is_soft:
        segments = [segment_example(lm, before, after) for before, after in splits]
        with torch.inference_mode():
            return batched_by_length(segments, [len(b) + len(a) for b, a in segments],
                                     lambda batch: soft_prompt_logits(lm, batch, prompt.embeddings, token_ids),
                                     len(token_ids), batch_size, progress)
    ids = list(prompt.token_ids or [])
    scorer = example_cache_scorer(task, lm)
    if scorer is not None and list(token_ids) == scorer.verbalizer_ids:
        return cached_split_logits(scorer, ids, examples, progress)
    sequences = [b + ids + a for b, a in (segment_example(lm, before, after, ids) for before, after in splits)]
    return batched_next_token_logits(lm, sequences, token_ids, batch_size, progress=progress)


# Kept between calls: evaluating many prompts on one split (a sweep, a transfer matrix, several
# verbalizer sets) encodes each example once per model instead of once per prompt. The examples'
# states are keyed by their token ids, so every template and verbalizer set shares one cache.
_EXAMPLE_CACHES: "OrderedDict[tuple, BoundedPrefixKVCache]" = OrderedDict()
_SCORERS: "OrderedDict[tuple, TaskGapReward]" = OrderedDict()
EVAL_CACHE_BYTES = 3 * 1024 ** 3  # the examples' key/value states kept for one model: all of SST-2's test set


def clear_caches() -> None:
    """Free the examples' states and scores kept between evaluations."""
    _SCORERS.clear()
    _EXAMPLE_CACHES.clear()


def example_cache_scorer(task: ClassificationTask, lm: LoadedModel) -> TaskGapReward | None:
    """The classification reward's cached path for this task and model, when its template puts the
    example before the prompt (causal LMs); None otherwise."""
    if lm.is_encoder_decoder or lm.is_masked_lm:
        return None
    model_key = (id(lm.model), lm.dtype)
    key = (*model_key, task.template.text, tuple(task.verbalizers))
    if key not in _SCORERS:
        if model_key not in _EXAMPLE_CACHES:
            _EXAMPLE_CACHES[model_key] = BoundedPrefixKVCache(lm, max_bytes=EVAL_CACHE_BYTES, encode_batch_size=32)
            while len(_EXAMPLE_CACHES) > 1:
                _EXAMPLE_CACHES.popitem(last=False)
        scorer = TaskGapReward(task, lm, example_cache=_EXAMPLE_CACHES[model_key])
        if scorer.layout != "example_first":
            return None
        _SCORERS[key] = scorer
        while len(_SCORERS) > 8:
            _SCORERS.popitem(last=False)
    _SCORERS.move_to_end(key)
    return _SCORERS[key]


def kv_bytes_per_token(lm: LoadedModel) -> int:
    """Bytes of key/value states one token of context holds in ``lm`` (SmolLM2-135M in fp32: 46 KiB)."""
    config = lm.model.config.get_text_config(decoder=True)
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return config.num_hidden_layers * 2 * heads * head_dim * torch.finfo(lm.dtype).bits // 8


def chunk_by_tokens(lengths: Sequence[int], max_tokens: int) -> list[range]:
    """Consecutive ranges of rows whose ``lengths`` add up to at most ``max_tokens`` (a longer row alone)."""
    chunks, start, total = [], 0, 0
    for row, length in enumerate(lengths):
        if row > start and total + length > max_tokens:
            chunks.append(range(start, row))
            start, total = row, 0
        total += length
    if start < len(lengths):
        chunks.append(range(start, len(lengths)))
    return chunks


def example_chunks(scorer: TaskGapReward, examples: Sequence[dict]) -> list[range]:
    """The examples in chunks whose cached states fit ``EVAL_CACHE_BYTES``, counted from each example's own
    tokens before the prompt, so a task of long texts (AG News) does not overshoot the bound."""
    befores = [scorer.task.template.split(example, scorer.mask)[0] for example in examples]
    lengths = [len(ids) for ids in encode_texts(scorer.lm, befores)]
    return chunk_by_tokens(lengths, EVAL_CACHE_BYTES // kv_bytes_per_token(scorer.lm))


def cached_split_logits(scorer, prompt_ids: Sequence[int] | Sequence[Sequence[int]], examples,
                        progress=None) -> torch.Tensor:
    """Verbalizer logits ``[N, C]`` of one discrete prompt after each example (``[P, N, C]`` for a list of P
    prompts), in chunks that fit the cache: each chunk of examples is encoded once for all the prompts."""
    several = bool(prompt_ids) and not isinstance(prompt_ids[0], int)
    rows = [tuple(ids) for ids in prompt_ids] if several else [tuple(prompt_ids)]
    fields = scorer.fields
    example_rows = [{f: row[f] for f in fields} for row in examples]
    chunks = []
    for chunk in example_chunks(scorer, example_rows):
        chunks.append(scorer.memoised_logits(rows, example_rows[chunk.start:chunk.stop]))
        if progress is not None:
            progress(len(chunk))
    logits = torch.cat(chunks, dim=1)
    return logits if several else logits[0]


def evaluate_prompts(task: ClassificationTask, lm: LoadedModel, prompts: Sequence[str | ScoredPrompt], *,
                     split: str = "test", limit: int | None = None, batch_size: int = 32,
                     progress: bool = True) -> list[ClassificationReport]:
    """``evaluate_prompt`` for several prompts, the same numbers; discrete prompts share one pass over the
    split, so a large test set (AG News: 7,600) is encoded once rather than once per prompt."""
    learned = [without_empty_text(p) for p in prompts]
    scorer = example_cache_scorer(task, lm)
    shared = [i for i, p in enumerate(learned) if not isinstance(p, str) and not p.is_soft]
    if scorer is None or scorer.verbalizer_ids != task.verbalizer_ids(lm.tokenizer) or len(shared) < 2:
        return [evaluate_prompt(task, lm, p, split=split, limit=limit, batch_size=batch_size, progress=progress)
                for p in prompts]
    examples = task.load_split(split, limit=limit)
    with tqdm(total=len(examples), desc=f"eval {task.name}/{split} x{len(shared)}", unit="ex",
              disable=not progress) as bar:
        logits = cached_split_logits(scorer, [list(learned[i].token_ids or []) for i in shared], examples, bar.update)
    reports = dict(zip(shared, (summarise(task, split, learned[i].text, row.argmax(-1).tolist(), examples["label"],
                                          task.subset_note(split, limit), lm=lm) for i, row in zip(shared, logits))))
    return [reports[i] if i in reports else evaluate_prompt(task, lm, p, split=split, limit=limit,
                                                            batch_size=batch_size, progress=progress)
            for i, p in enumerate(prompts)]
