"""RLPrompt's policy: a frozen causal LM whose last hidden state goes through a small trainable MLP
and then through the LM's own frozen head.

Because the LM is frozen, the hidden state at each step of a sampled prompt does not depend on the
MLP; a rollout keeps those states ``[N, L, d]`` so the policy's and the target network's logits
(Q-values) for the loss are two cheap MLP + head passes, with no second LM forward.

Shapes: N prompts, L prompt tokens, d hidden size, V head rows (the action space).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
from torch import nn
from transformers import DynamicCache

from ..models import LoadedModel, load_lm


@dataclass
class Rollout:
    """Sampled prompts: ``token_ids [N, L]``, the frozen LM's hidden states before each token
    ``hidden [N, L, d]`` and the allowed actions ``allowed [N, L, V]`` (None: every token)."""

    token_ids: torch.Tensor
    hidden: torch.Tensor
    allowed: torch.Tensor | None = None


def adaptor_mlp(hidden_size: int, width: int = 2048, init_std: float = 1e-4) -> nn.Sequential:
    """``Linear(d, width) -> ReLU -> Linear(width, d)`` with RLPrompt's tiny init (see ``init_adaptor``)."""
    mlp = nn.Sequential(nn.Linear(hidden_size, width), nn.ReLU(), nn.Linear(width, hidden_size))
    init_adaptor(mlp, init_std)
    return mlp


@torch.no_grad()
def init_adaptor(mlp: nn.Module, init_std: float = 1e-4, generator: torch.Generator | None = None) -> None:
    """Weights N(0, init_std), biases -init_std (RLPrompt's init): the head sees a near-zero state,
    so the policy starts near uniform."""
    for layer in mlp.modules():
        if isinstance(layer, nn.Linear):
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * init_std)
            layer.bias.fill_(-init_std)


def filter_top_k_top_p(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Logits ``[..., V]`` with everything outside the top-k / nucleus set to -inf (sampling only)."""
    if top_k is not None and 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        drop_sorted = cumulative - sorted_logits.softmax(-1) >= top_p  # keep the token that crosses top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


class LMAdaptorPolicy(nn.Module):
    """Frozen causal LM + trainable MLP before its head; only ``self.mlp`` has parameters to train.

    ``condition``: the text the prompt is generated after (default: the tokenizer's BOS token, or
    EOS when there is none). ``logit_bias``: ``{token_id: bias}`` or a ``[V]`` tensor added to every
    step's logits. ``fluent_top_k``: only tokens within the top-k of the frozen LM's own next-token
    distribution are allowed. Special tokens are never allowed (``allow_special=True`` to permit).
    ``top_k``/``top_p`` shape sampling only; the allowed set (bias, fluency) is part of the action
    space and so also of the Q-values the loss sees.
    """

    def __init__(self, lm: LoadedModel | str = "auto", *, mlp_width: int = 2048, condition: str | None = None,
                 logit_bias: Mapping[int, float] | torch.Tensor | None = None, fluent_top_k: int | None = None,
                 top_k: int | None = None, top_p: float | None = None, allow_special: bool = False,
                 init_std: float = 1e-4):
        super().__init__()
        self.lm = lm if isinstance(lm, LoadedModel) else load_lm(lm, role="policy")
        if self.lm.is_encoder_decoder:
            raise ValueError(f"the policy needs a causal LM; {self.lm.spec!r} is an encoder-decoder")
        config = self.lm.model.config.get_text_config(decoder=True)
        self.hidden_size = config.hidden_size
        self.head = self.lm.model.get_output_embeddings()
        self.vocab_size = self.head.weight.shape[0]
        self.init_std = init_std
        self.mlp = adaptor_mlp(self.hidden_size, mlp_width, init_std).to(self.lm.device, torch.float32)
        self.top_k, self.top_p, self.fluent_top_k = top_k, top_p, fluent_top_k
        self.condition = condition
        self.condition_ids = self._condition_ids(condition)
        self.register_buffer("bias", self._bias(logit_bias, allow_special), persistent=False)

    # ------------------------------------------------------------------ setup

    def _condition_ids(self, condition: str | None) -> list[int]:
        tokenizer = self.lm.tokenizer
        if condition:
            ids = tokenizer.encode(condition, add_special_tokens=False)
            if not ids:
                raise ValueError(f"the policy's conditioning text {condition!r} has no tokens")
            return ids
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        if start is None:
            raise ValueError(f"{self.lm.spec!r} has no BOS or EOS token; give the policy a conditioning text")
        return [start]

    def _bias(self, logit_bias, allow_special: bool) -> torch.Tensor:
        bias = torch.zeros(self.vocab_size)
        if isinstance(logit_bias, torch.Tensor):
            if logit_bias.shape != (self.vocab_size,):
                raise ValueError(f"logit_bias must have shape [{self.vocab_size}], got {list(logit_bias.shape)}")
            bias += logit_bias.float().cpu()
        elif logit_bias:
            for token, value in logit_bias.items():
                if not 0 <= int(token) < self.vocab_size:
                    raise ValueError(f"logit_bias names token {token}, outside the vocabulary [0, {self.vocab_size})")
                bias[int(token)] += float(value)
        if not allow_special:
            bias[list(self.lm.tokenizer.all_special_ids)] = float("-inf")
        bias[len(self.lm.tokenizer):] = float("-inf")  # head rows the tokenizer cannot decode
        if torch.isinf(bias).all():
            raise ValueError("the logit bias leaves no token the policy may choose")
        return bias.to(self.lm.device)

    def reset_mlp(self, seed: int = 0) -> None:
        """Re-initialise the MLP from ``seed`` (so a run's start depends on its seed alone)."""
        init_adaptor(self.mlp, self.init_std, torch.Generator().manual_seed(seed))

    def target_mlp(self) -> nn.Module:
        """A frozen copy of the MLP: the target network of soft Q-learning."""
        return copy.deepcopy(self.mlp).requires_grad_(False)

    # ------------------------------------------------------------------ Q-values

    def q_values(self, hidden: torch.Tensor, allowed: torch.Tensor | None = None,
                 mlp: nn.Module | None = None) -> torch.Tensor:
        """Logits (= Q-values) ``[..., V]`` from LM hidden states ``[..., d]`` through ``mlp`` (default: ours)."""
        mlp = self.mlp if mlp is None else mlp
        state = mlp(hidden.float()).to(self.head.weight.dtype)
        logits = self.head(state).float() + self.bias
        if allowed is not None:
            logits = logits.masked_fill(~allowed, float("-inf"))
        return logits

    def _allowed(self, hidden: torch.Tensor) -> torch.Tensor | None:
        """The fluency constraint ``[N, V]``: tokens in the top-k of the frozen LM's own distribution."""
        if not self.fluent_top_k:
            return None
        lm_logits = self.head(hidden).float() + self.bias
        top = lm_logits.topk(min(self.fluent_top_k, self.vocab_size), dim=-1).indices
        return torch.zeros_like(lm_logits, dtype=torch.bool).scatter_(-1, top, True)

    # ------------------------------------------------------------------ the frozen LM

    @torch.no_grad()
    def _condition_cache(self, batch: int):
        """Hidden state after the conditioning text ``[N, d]`` and a fresh KV cache for N rows."""
        if not hasattr(self, "_condition_state"):
            ids = torch.tensor([self.condition_ids], device=self.lm.device)
            out = self.lm.model.base_model(input_ids=ids, use_cache=True)
            self._condition_state = (out.last_hidden_state[:, -1], [(k, v) for k, v, *_ in out.past_key_values])
        last, layers = self._condition_state
        cache = DynamicCache(ddp_cache_data=[(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1))
                                             for k, v in layers], config=self.lm.model.config)
        return last.expand(batch, -1), cache

    @torch.no_grad()
    def teacher_forcing(self, token_ids: torch.Tensor) -> Rollout:
        """The LM's hidden states before each of the given prompt tokens ``[N, L]`` (one cached forward)."""
        token_ids = torch.as_tensor(token_ids, device=self.lm.device).long()
        first, cache = self._condition_cache(token_ids.shape[0])
        states = [first[:, None]]
        if token_ids.shape[1] > 1:
            out = self.lm.model.base_model(input_ids=token_ids[:, :-1], past_key_values=cache, use_cache=True)
            states.append(out.last_hidden_state)
        hidden = torch.cat(states, dim=1)  # [N, L, d]
        allowed = self._allowed(hidden) if self.fluent_top_k else None
        return Rollout(token_ids, hidden, allowed)

    @torch.no_grad()
    def sample(self, num_prompts: int, length: int, *, generator: torch.Generator | None = None,
               greedy: bool = False) -> Rollout:
        """Sample ``num_prompts`` prompts of ``length`` tokens (greedy: argmax), feeding ids through a KV cache."""
        hidden_t, cache = self._condition_cache(num_prompts)
        tokens, hiddens, alloweds = [], [], []
        for step in range(length):
            allowed = self._allowed(hidden_t)
            logits = self.q_values(hidden_t, allowed)  # [N, V]
            if greedy:
                action = logits.argmax(-1)
            else:
                probs = filter_top_k_top_p(logits, self.top_k, self.top_p).softmax(-1)
                action = torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(-1).to(self.lm.device)
            tokens.append(action)
            hiddens.append(hidden_t)
            alloweds.append(allowed)
            if step + 1 < length:
                out = self.lm.model.base_model(input_ids=action[:, None], past_key_values=cache, use_cache=True)
                cache, hidden_t = out.past_key_values, out.last_hidden_state[:, -1]
        allowed = torch.stack(alloweds, 1) if self.fluent_top_k else None
        return Rollout(torch.stack(tokens, 1), torch.stack(hiddens, 1), allowed)

    def greedy(self, length: int) -> Rollout:
        return self.sample(1, length, greedy=True)

    def decode(self, token_ids: torch.Tensor | Sequence[Sequence[int]]) -> list[str]:
        return [self.lm.tokenizer.decode(list(map(int, row))) for row in token_ids]
