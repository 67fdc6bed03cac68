"""Batched scoring of token sequences with a frozen LM: the one place padding is handled.

Causal LMs are read at the next token, with left padding and ``position_ids = cumsum(attention_mask) - 1``,
so a padded sequence sees exactly the positions it would see alone (with plain ``arange`` positions the
logits of GPT-2-style models shift by up to ~9). Encoder-decoders read the first decoder step. Masked
LMs (RoBERTa, BERT) are read at the sequence's one mask token, right-padded (their positions count
from the first token) and framed by their tokenizer's special tokens (``<s> ... </s>``); every token
attends to the whole sequence, so nothing is cached across prompts: a batch is one full forward.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from .models import LoadedModel
from .tasks.templates import MASK_SLOT, Template, TemplateError


def _padded(sequences: Sequence[Sequence[int]], pad_id: int, *, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask)`` ``[B, T]`` of sequences padded with ``pad_id`` on the left or the right."""
    if not sequences or any(len(s) == 0 for s in sequences):
        raise ValueError("cannot score an empty batch or an empty sequence")
    width = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        columns = slice(width - len(seq), width) if left else slice(0, len(seq))
        input_ids[row, columns] = torch.as_tensor(seq, dtype=torch.long)
        attention_mask[row, columns] = 1
    return input_ids, attention_mask


def left_pad(sequences: Sequence[Sequence[int]], pad_id: int, device: torch.device | str = "cpu"):
    """``(input_ids, attention_mask, position_ids)`` of left-padded sequences; shapes ``[B, T]``."""
    input_ids, attention_mask = _padded(sequences, pad_id, left=True)
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    return input_ids.to(device), attention_mask.to(device), position_ids.to(device)


def right_pad(sequences: Sequence[Sequence[int]], pad_id: int, device: torch.device | str = "cpu"):
    """``(input_ids, attention_mask)`` of right-padded sequences; shapes ``[B, T]``."""
    input_ids, attention_mask = _padded(sequences, pad_id, left=False)
    return input_ids.to(device), attention_mask.to(device)


def encode_texts(lm: LoadedModel, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text: no special tokens for causal LMs, the usual EOS for encoders, the
    tokenizer's frame for masked LMs (RoBERTa: ``<s> ... </s>``)."""
    return lm.tokenizer(list(texts), add_special_tokens=lm.is_encoder_decoder or lm.is_masked_lm)["input_ids"]


def special_ends(tokenizer) -> tuple[list[int], list[int]]:
    """The special tokens a tokenizer puts before and after a text (RoBERTa: ``[<s>]``, ``[</s>]``; BERT:
    ``[CLS]``, ``[SEP]``), found by encoding one word with and without them."""
    plain = tokenizer.encode("a", add_special_tokens=False)
    framed = tokenizer.encode("a", add_special_tokens=True)
    for start in range(len(framed) - len(plain) + 1):
        if framed[start:start + len(plain)] == plain:
            return framed[:start], framed[start + len(plain):]
    return [], []


def template_mask(lm: LoadedModel) -> str | None:
    """What a template's ``{mask}`` is written as for this model: its mask token, or None (not a masked LM)."""
    return lm.tokenizer.mask_token if lm.is_masked_lm else None


def check_template(template: Template, lm: LoadedModel) -> None:
    """A ``TemplateError`` when the model cannot read the template: a causal (or encoder-decoder) LM given
    a ``{mask}`` slot, or a masked LM given a template without one."""
    slot = "{" + MASK_SLOT + "}"
    if template.has_mask and not lm.is_masked_lm:
        raise TemplateError(f"template {template.text!r} has a {slot} slot, but the task model {lm.spec!r} is not a "
                            f"masked LM (it reads the class at the next token): drop {slot}, or pass a masked LM "
                            "such as roberta-large")
    if lm.is_masked_lm and not template.has_mask:
        raise TemplateError(f"the task model {lm.spec!r} is a masked LM, which reads the class at a {slot} slot; "
                            f"template {template.text!r} has none: add one, e.g. --template "
                            f"\"{{sentence}} {{prompt}} {slot} .\"")


def decoder_start_ids(lm: LoadedModel, batch_size: int) -> torch.Tensor:
    start = lm.model.config.decoder_start_token_id
    if start is None:
        start = lm.tokenizer.pad_token_id
    return torch.full((batch_size, 1), start, dtype=torch.long, device=lm.device)


@torch.inference_mode()
def next_token_logits(lm: LoadedModel, sequences: Sequence[Sequence[int]], token_ids: Sequence[int]) -> torch.Tensor:
    """Logits ``[B, len(token_ids)]`` of ``token_ids`` as the next token after each sequence.

    For encoder-decoders the sequence is the encoder input and the logits are those of the
    first decoder step; for masked LMs, each sequence holds one mask token and the logits are read there.
    """
    if lm.is_masked_lm:
        return mask_token_logits(lm, sequences, token_ids)
    input_ids, attention_mask, position_ids = left_pad(sequences, lm.tokenizer.pad_token_id, lm.device)
    if lm.is_encoder_decoder:
        out = lm.model(input_ids=input_ids, attention_mask=attention_mask,
                       decoder_input_ids=decoder_start_ids(lm, len(sequences)))
    else:
        out = lm.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                       logits_to_keep=1, use_cache=False)
    return out.logits[:, -1, list(token_ids)].float()


# the module that maps a masked LM's final hidden states to vocabulary logits, by model family: RoBERTa and
# its kin call it lm_head, BERT's cls; a model with neither is read from its full forward
_MASK_HEADS = ("lm_head", "cls")


def mask_positions(lm: LoadedModel, sequences: Sequence[Sequence[int]]) -> list[int]:
    """The index of the one mask token in each sequence (a ``TemplateError`` naming the text otherwise)."""
    mask_id = lm.tokenizer.mask_token_id
    positions = []
    for seq in sequences:
        found = [i for i, token in enumerate(seq) if token == mask_id]
        if len(found) != 1:
            raise TemplateError(f"a masked LM reads the class at exactly one mask token per example; found "
                                f"{len(found)} in {lm.tokenizer.decode(list(seq))[:200]!r}")
        positions.append(found[0])
    return positions


def max_sequence_length(lm: LoadedModel) -> int:
    """The longest sequence a masked LM takes: its tokenizer's limit or its position table, less RoBERTa's
    offset (its positions count from the pad id: roberta-large takes 512 tokens of its 514 positions)."""
    config, tokenizer = lm.model.config, lm.tokenizer
    offset = getattr(getattr(lm.model.base_model, "embeddings", None), "padding_idx", None)
    limit = (getattr(config, "max_position_embeddings", None) or 10**9) - (offset + 1 if offset is not None else 0)
    return min(limit, tokenizer.model_max_length if tokenizer.model_max_length < 10**6 else limit)


def fit_around_mask(sequence: Sequence[int], position: int, limit: int) -> tuple[list[int], int]:
    """``sequence`` cut to ``limit`` tokens around its mask at ``position``: its first and last tokens (the
    special frame) kept, and of the others as many on each side of the mask as that side has, up to half the
    room (a long Yelp review loses its beginning under "{sentence} {prompt} {mask} .", its end under
    "{mask} {prompt} {sentence}"), so the mask and the prompt beside it stay. Returns the sequence and the
    mask's new index."""
    sequence = list(sequence)
    excess = len(sequence) - limit
    if excess <= 0:
        return sequence, position
    before, after = position - 1, len(sequence) - 2 - position  # droppable tokens on each side of the mask
    keep = before + after - excess
    if keep < 0:
        raise TemplateError(f"a masked LM's input of {len(sequence)} tokens cannot be cut to its {limit} around the mask")
    keep_after = min(after, keep // 2)
    keep_before = min(before, keep - keep_after)
    keep_after = keep - keep_before
    start, end = position - keep_before, position + 1 + keep_after
    return sequence[:1] + sequence[start:end] + sequence[-1:], keep_before + 1


@torch.inference_mode()
def mask_token_logits(lm: LoadedModel, sequences: Sequence[Sequence[int]], token_ids: Sequence[int]) -> torch.Tensor:
    """Logits ``[B, len(token_ids)]`` of ``token_ids`` at each sequence's mask token, one full forward of a masked
    LM over the right-padded batch; the LM head runs on the B mask positions only. A sequence longer than the
    model takes is cut around its mask (``fit_around_mask``)."""
    limit = max_sequence_length(lm)
    fitted = [fit_around_mask(seq, position, limit) for seq, position in zip(sequences, mask_positions(lm, sequences))]
    sequences = [seq for seq, _ in fitted]
    positions = torch.tensor([position for _, position in fitted], device=lm.device)
    input_ids, attention_mask = right_pad(sequences, lm.tokenizer.pad_token_id, lm.device)
    return read_at_mask(lm, positions, token_ids, input_ids=input_ids, attention_mask=attention_mask)


def read_at_mask(lm: LoadedModel, positions: torch.Tensor, token_ids: Sequence[int], **inputs) -> torch.Tensor:
    """Logits ``[B, len(token_ids)]`` at row b's ``positions[b]`` of a masked LM's forward over ``inputs``
    (ids or embeddings, right-padded), the LM head run on those B rows only."""
    rows = torch.arange(len(positions), device=lm.device)
    head = next((getattr(lm.model, name) for name in _MASK_HEADS
                 if isinstance(getattr(lm.model, name, None), torch.nn.Module)), None)
    if head is None:
        logits = lm.model(**inputs).logits[rows, positions]
    else:
        logits = head(lm.model.base_model(**inputs)[0][rows, positions])
    return logits[:, list(token_ids)].float()


def batched_by_length(items: Sequence, lengths: Sequence[int], score: Callable[[list], torch.Tensor], width: int,
                      batch_size: int = 32, progress=None) -> torch.Tensor:
    """``score(batch) -> [n, width]`` over ``items`` in batches of similar length (longest first, so
    little padding is wasted); the rows ``[len(items), width]`` come back in the items' order.

    ``progress`` is an optional callable taking the number of items just scored.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = sorted(range(len(items)), key=lambda i: lengths[i], reverse=True)
    result = torch.empty((len(items), width), dtype=torch.float32)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        result[chunk] = score([items[i] for i in chunk]).cpu().float()
        if progress is not None:
            progress(len(chunk))
    return result


def batched_next_token_logits(lm: LoadedModel, sequences: Sequence[Sequence[int]], token_ids: Sequence[int],
                              batch_size: int = 32, progress=None) -> torch.Tensor:
    """``next_token_logits`` over many sequences, batched by similar length to waste little padding
    (a masked LM's full forwards most of all)."""
    return batched_by_length(sequences, [len(s) for s in sequences],
                             lambda batch: next_token_logits(lm, batch, token_ids), len(token_ids), batch_size,
                             progress)


# --------------------------------------------------------------------------- prompts as ids or embeddings


def masked_soft_prompt_logits(lm: LoadedModel, segments: Sequence[tuple[list[int], list[int]]],
                              soft_prompt: torch.Tensor, token_ids: Sequence[int]) -> torch.Tensor:
    """``soft_prompt_logits`` of a masked LM: each row ``embed(before) + prompt + embed(after)``, right-padded
    with zero embeddings, read at the one mask token of ``before + after``."""
    embed = lm.model.get_input_embeddings()
    batch = len(segments)
    prompts = soft_prompt.expand(batch, *soft_prompt.shape[-2:]) if soft_prompt.dim() == 2 else soft_prompt
    prompts = prompts.to(device=lm.device, dtype=embed.weight.dtype)
    length = prompts.shape[1]
    around = mask_positions(lm, [before + after for before, after in segments])  # in the text without the prompt
    positions = torch.tensor([at if at < len(before) else at + length for at, (before, _) in zip(around, segments)],
                             device=lm.device)
    lengths = [len(b) + length + len(a) for b, a in segments]
    width = max(lengths)
    rows, mask = [], torch.zeros((batch, width), dtype=torch.long, device=lm.device)
    for row, ((before, after), size) in enumerate(zip(segments, lengths)):
        pieces = [embed(torch.tensor(before, dtype=torch.long, device=lm.device)), prompts[row],
                  embed(torch.tensor(after, dtype=torch.long, device=lm.device))]
        rows.append(torch.cat([*pieces, prompts.new_zeros((width - size, prompts.shape[-1]))]))
        mask[row, :size] = 1
    return read_at_mask(lm, positions, token_ids, inputs_embeds=torch.stack(rows), attention_mask=mask)


def segment_example(lm: LoadedModel, before: str, after: str, prompt_ids: Sequence[int] | None = None):
    """Token ids of the text before and after the prompt slot, encoded separately.

    Prompts given as token ids are spliced in between, never re-tokenised. When the template
    leaves a space before the slot and the prompt's first token starts with a space itself
    (GPT-2's "Ġword" tokens), the template's space is dropped so the LM does not see two.
    Encoder-decoders get their EOS token at the very end; masked LMs their tokenizer's frame
    (``<s>`` before, ``</s>`` after).
    """
    if prompt_ids and before.endswith(" ") and lm.tokenizer.decode(list(prompt_ids[:1]))[:1].isspace():
        before = before[:-1]
    encode = lm.tokenizer.encode
    before_ids = encode(before, add_special_tokens=False) if before else []
    after_ids = encode(after, add_special_tokens=False) if after else []
    if lm.is_encoder_decoder and lm.tokenizer.eos_token_id is not None:
        after_ids = after_ids + [lm.tokenizer.eos_token_id]
    if lm.is_masked_lm:
        head, tail = special_ends(lm.tokenizer)
        before_ids, after_ids = head + before_ids, after_ids + tail
    return before_ids, after_ids


def soft_prompt_logits(lm: LoadedModel, segments: Sequence[tuple[list[int], list[int]]], soft_prompt: torch.Tensor,
                       token_ids: Sequence[int]) -> torch.Tensor:
    """Differentiable logits ``[B, K]`` of ``token_ids`` with a soft prompt in the prompt slot.

    ``segments`` holds (before_ids, after_ids) per example; ``soft_prompt`` is ``[L, d]`` (shared
    by every row) or ``[B, L, d]``. Rows are left-padded with zero embeddings and masked, with the
    same position ids as ``next_token_logits``; for a masked LM right-padded, and read at the mask.
    """
    if lm.is_masked_lm:
        return masked_soft_prompt_logits(lm, segments, soft_prompt, token_ids)
    embed = lm.model.get_input_embeddings()
    batch = len(segments)
    prompts = soft_prompt.expand(batch, *soft_prompt.shape[-2:]) if soft_prompt.dim() == 2 else soft_prompt
    prompts = prompts.to(device=lm.device, dtype=embed.weight.dtype)
    lengths = [len(b) + prompts.shape[1] + len(a) for b, a in segments]
    width = max(lengths)
    rows, mask = [], torch.zeros((batch, width), dtype=torch.long, device=lm.device)
    for row, ((before, after), length) in enumerate(zip(segments, lengths)):
        pieces = [embed(torch.tensor(before, dtype=torch.long, device=lm.device)), prompts[row],
                  embed(torch.tensor(after, dtype=torch.long, device=lm.device))]
        padding = prompts.new_zeros((width - length, prompts.shape[-1]))
        rows.append(torch.cat([padding, *pieces]))
        mask[row, width - length:] = 1
    inputs_embeds = torch.stack(rows)
    if lm.is_encoder_decoder:
        out = lm.model(inputs_embeds=inputs_embeds, attention_mask=mask, decoder_input_ids=decoder_start_ids(lm, batch))
    else:
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        out = lm.model(inputs_embeds=inputs_embeds, attention_mask=mask, position_ids=position_ids,
                       logits_to_keep=1, use_cache=False)
    return out.logits[:, -1, list(token_ids)].float()
