"""Tiny randomly initialised models and a tokenizer trained in-process, for tests and smoke runs.

Nothing here touches the network: the byte-level BPE tokenizer is trained on a small built-in
corpus in milliseconds. Common verbalizer words (" great", " terrible", " positive", " yes", ...)
come out as single tokens, as they do in GPT-2's tokenizer, while rare words split into several.
"""

from __future__ import annotations

import torch
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    RobertaConfig,
    RobertaForMaskedLM,
    T5Config,
    T5ForConditionalGeneration,
)

SPECIAL_TOKENS = ["<pad>", "<eos>", "<unk>"]

WORDS = (
    "great terrible good bad okay negative positive subjective objective yes no world sports business tech "
    "description entity expression human location number movie film story review sentiment the a an of and to "
    "is was it this that in on for with as but not very really so too plot acting actors fun boring funny "
    "sad beautiful awful love hate best worst question answer passage true false it's one two three"
).split()


def build_test_tokenizer(extra_text: str = "") -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (~600 tokens) trained on a fixed corpus plus ``extra_text``."""
    corpus = [" ".join(WORDS)] * 50 + [f"Review: the {w} movie . Sentiment: {v}" for w in WORDS for v in ("great", "terrible")]
    if extra_text:
        corpus.append(extra_text)
    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="<eos>", bos_token="<eos>", unk_token="<unk>",
        padding_side="left",
    )


def with_mask_token(tokenizer: PreTrainedTokenizerFast, cls: str = "<s>", sep: str = "</s>") -> PreTrainedTokenizerFast:
    """``tokenizer`` made a masked LM's, as RoBERTa's is: a ``<mask>`` token that takes the space before it
    (``" <mask>"`` is one token), and ``cls``/``sep`` around every encoded text. Changes ``tokenizer`` in place."""
    tokenizer.add_special_tokens({"mask_token": AddedToken("<mask>", lstrip=True, special=True),
                                  "cls_token": cls, "sep_token": sep})
    ends = [(cls, tokenizer.cls_token_id), (sep, tokenizer.sep_token_id)]
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} {sep} $B {sep}", special_tokens=list(dict.fromkeys(ends)))
    return tokenizer


def tiny_random_model(arch: str = "gpt2", seed: int = 0, tokenizer: PreTrainedTokenizerFast | None = None):
    """A (model, tokenizer) pair with a few thousand parameters; ``arch`` is gpt2, llama, t5 or roberta
    (a masked LM, its tokenizer the others' plus ``<mask>``, ``<s>`` and ``</s>``)."""
    tokenizer = tokenizer or build_test_tokenizer()
    if arch == "roberta" and tokenizer.mask_token is None:
        tokenizer = with_mask_token(tokenizer)
    vocab = len(tokenizer)
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    torch.manual_seed(seed)
    if arch == "gpt2":
        config = GPT2Config(vocab_size=vocab, n_positions=256, n_embd=32, n_layer=2, n_head=2,
                            bos_token_id=eos, eos_token_id=eos, pad_token_id=pad)
        model = GPT2LMHeadModel(config)
    elif arch == "llama":
        config = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                             bos_token_id=eos, eos_token_id=eos, pad_token_id=pad, tie_word_embeddings=True)
        model = LlamaForCausalLM(config)
    elif arch == "t5":
        config = T5Config(vocab_size=vocab, d_model=32, d_ff=64, d_kv=8, num_layers=2, num_heads=4,
                          decoder_start_token_id=pad, pad_token_id=pad, eos_token_id=eos)
        model = T5ForConditionalGeneration(config)
    elif arch == "roberta":  # weights drawn with std 0.3, not 0.02: there a 3-token prompt moves the mask's class
        # probabilities by up to +-0.6, at 0.02 by +-0.0003, which leaves a learning test nothing to learn
        config = RobertaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                               num_attention_heads=2, max_position_embeddings=pad + 258, type_vocab_size=1,
                               initializer_range=0.3,
                               pad_token_id=pad, bos_token_id=tokenizer.cls_token_id,
                               eos_token_id=tokenizer.sep_token_id)
        model = RobertaForMaskedLM(config)
    else:
        raise ValueError(f"unknown tiny architecture {arch!r}; choose gpt2, llama, t5 or roberta")
    return model.eval(), tokenizer
