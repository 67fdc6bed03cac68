"""Prompted generation: the task LM rewrites each input given a prompt, as RLPrompt does for style transfer.

The input to the LM is the template filled with the prompt and the input sentence; RLPrompt's
template ``{prompt} "{input}" "`` opens a quotation that the model fills with the rewrite, so the
rewrite is the text up to the closing quote. Several rewrites are sampled per input with top-k;
each rewrite is capped at ``length_ratio`` times the input's token count (RLPrompt's length
control), and lower-cased when the data is. Inputs are batched with left padding through
``transformers``' ``generate``; a stopping criterion ends a row as soon as it emits a quote.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from ..models import LoadedModel
from ..tasks.templates import Template

RLPROMPT_TEMPLATE = '{prompt} "{input}" "'
END_TEXT = '"'


@dataclass(frozen=True)
class GenerationSettings:
    """How rewrites are sampled. ``num_samples`` rewrites per input; ``top_k=None`` or ``greedy`` for argmax."""

    num_samples: int = 4
    top_k: int | None = 10
    length_ratio: float = 1.5
    min_tokens: int = 2
    lowercase: bool = False
    greedy: bool = False
    end_text: str = END_TEXT
    batch_size: int = 16
    seed: int = 0

    def __post_init__(self):
        if self.num_samples < 1:
            raise ValueError(f"num_samples must be at least 1, got {self.num_samples}")
        if self.greedy and self.num_samples != 1:
            raise ValueError("greedy decoding gives one rewrite per input; set num_samples=1")
        if self.length_ratio <= 0:
            raise ValueError(f"length_ratio must be positive, got {self.length_ratio}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if not self.end_text:
            raise ValueError("end_text must be a non-empty string (RLPrompt's is the closing quote '\"')")


class _StopOnTokens(StoppingCriteria):
    """Finish a row once any of its generated tokens is in ``stop_ids`` (tokens that contain the end text)."""

    def __init__(self, stop_ids: torch.Tensor, prompt_width: int):
        self.stop_ids = stop_ids
        self.prompt_width = prompt_width

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        generated = input_ids[:, self.prompt_width:]  # [B, t]
        return torch.isin(generated, self.stop_ids.to(generated.device)).any(-1)


_STOP_IDS: dict[tuple[int, str], torch.Tensor] = {}


def stop_token_ids(tokenizer, end_text: str) -> torch.Tensor:
    """Ids of every vocabulary token whose text contains ``end_text`` (e.g. ``"``, ``."``, ``")``)."""
    key = (id(tokenizer), end_text)
    if key not in _STOP_IDS:
        pieces = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
        _STOP_IDS[key] = torch.tensor([i for i, piece in enumerate(pieces) if end_text in piece], dtype=torch.long)
    return _STOP_IDS[key]


def length_caps(lm: LoadedModel, inputs: Sequence[str], settings: GenerationSettings) -> list[int]:
    """Maximum rewrite length in tokens for each input: ``ceil(length_ratio * input tokens)``, at least ``min_tokens``."""
    counts = [len(ids) for ids in lm.tokenizer(list(inputs), add_special_tokens=False)["input_ids"]]
    return [max(settings.min_tokens, math.ceil(settings.length_ratio * n)) for n in counts]


def cut_output(text: str, end_text: str = END_TEXT, lowercase: bool = False) -> str:
    """The rewrite: the text before the first ``end_text``, stripped (and lower-cased when asked)."""
    text = text.split(end_text, 1)[0].strip()
    return text.lower() if lowercase else text


@torch.inference_mode()
def generate_rewrites(lm: LoadedModel, prompts: str | Sequence[str], inputs: Sequence[str], *,
                      settings: GenerationSettings | None = None, template: str | Template = RLPROMPT_TEMPLATE,
                      logits_processor=None, progress=None) -> list[list[str]]:
    """``settings.num_samples`` rewrites of each input, as ``[len(inputs)][num_samples]`` strings.

    ``prompts`` is one prompt for every input or one per input (the RL case: each (prompt, input)
    pair of a step). ``logits_processor``: an optional ``transformers`` ``LogitsProcessorList`` that
    constrains decoding (e.g. banned words). ``progress``: a callable taking the number of inputs done.
    """
    settings = settings or GenerationSettings()
    inputs = list(inputs)
    prompts = [prompts] * len(inputs) if isinstance(prompts, str) else list(prompts)
    if len(prompts) != len(inputs):
        raise ValueError(f"{len(prompts)} prompts for {len(inputs)} inputs; give one prompt or one per input")
    if not inputs:
        return []
    if lm.is_encoder_decoder:
        raise ValueError(f"prompted rewriting needs a causal task LM; {lm.spec!r} is an encoder-decoder")
    template = template if isinstance(template, Template) else Template(template, fields=("input",))
    tokenizer = lm.tokenizer
    texts = [template.format({"input": x}, p).lstrip() for p, x in zip(prompts, inputs)]
    caps = length_caps(lm, inputs, settings)
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    if any(len(ids) == 0 for ids in encoded):
        raise ValueError("an empty prompt and input left nothing to condition the rewrite on")
    stop_ids = stop_token_ids(tokenizer, settings.end_text)
    results: list[list[str]] = [[] for _ in inputs]
    order = sorted(range(len(inputs)), key=lambda i: len(encoded[i]))
    devices = [lm.device] if lm.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(settings.seed)
        for start in range(0, len(order), settings.batch_size):
            chunk = order[start:start + settings.batch_size]
            batch = tokenizer.pad({"input_ids": [encoded[i] for i in chunk]}, padding=True, padding_side="left",
                                  return_tensors="pt").to(lm.device)
            width = batch["input_ids"].shape[1]
            new_tokens = max(caps[i] for i in chunk) + 1  # + 1: room for the closing quote
            sampling = dict(do_sample=False) if settings.greedy else dict(
                do_sample=True, top_k=settings.top_k or 0, top_p=1.0, temperature=1.0)
            out = lm.model.generate(
                **batch, max_new_tokens=new_tokens, min_new_tokens=0, num_return_sequences=settings.num_samples,
                pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                stopping_criteria=StoppingCriteriaList([_StopOnTokens(stop_ids, width)]),
                logits_processor=logits_processor, **sampling)
            generated = out[:, width:].cpu()  # [len(chunk) * num_samples, t], samples of an input adjacent
            for row, ids in enumerate(generated.tolist()):
                index = chunk[row // settings.num_samples]
                text = tokenizer.decode(ids[:caps[index] + 1], skip_special_tokens=True)
                if settings.end_text not in text:  # no closing quote within the cap: keep cap tokens
                    text = tokenizer.decode(ids[:caps[index]], skip_special_tokens=True)
                results[index].append(cut_output(text, settings.end_text, settings.lowercase))
            if progress is not None:
                progress(len(chunk))
    return results
