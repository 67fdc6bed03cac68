"""RLPrompt's policy: a frozen causal LM whose last hidden state goes through a small trainable
MLP and then through the LM's own frozen head, optionally on top of the LM's own distribution.

Q-values (= logits) of an action ``a`` (a token) in state ``s`` (the text so far)::

    Q(s, a) = head(MLP(h_s))[a] + b[a]  +  beta * log pi_LM(a | s)

``h_s`` is the frozen LM's last hidden state, ``b`` a fixed bias (-inf outside the action space)
and ``pi_LM`` the frozen LM's own next-token distribution over the actions allowed in ``s``.
With ``beta = 0`` (RLPrompt) the tiny MLP init makes the policy start near uniform over the
vocabulary; with ``beta = 1`` it starts as the LM itself (the MLP's correction starts near zero).

Why the prior is a KL penalty (the LM-prior derivation). Soft Q-learning with temperature 1
fits the policy ``pi(a|s) = exp(Q(s,a) - V(s))``, ``V = logsumexp_a Q``, to the soft Bellman
equation ``Q(s_t, a_t) = r_t + V(s_{t+1})``; its fixed point maximises
``E[sum_t r_t] + H(pi)``, the entropy bonus being a pull towards the uniform policy. Give every
token a dense reward ``r_t = beta * log pi_LM(a_t | s_t)`` and the objective becomes
``E[R] - sum_t E[KL(pi(.|s_t) || pi_LM^beta(.|s_t))]`` up to the normaliser of ``pi_LM^beta``:
the penalty now pulls towards the LM instead of uniform, token by token, a dense cousin of the
sparse ``alpha * perplexity`` reward (``sum_t log pi_LM`` is minus L times the prompt's
log-perplexity under the policy LM). With ``beta = 1`` and no terminal reward the LM itself is the
fixed point (every state's soft value ``logsumexp_a log pi_LM(a|s)`` is 0), and that is what
``Q = log pi_LM + correction`` equals at initialisation: learning starts at the KL-regularised
optimum of the reward-free problem and the MLP only learns the reward's correction (for other
betas the start is ``pi_LM^beta``, near that optimum). ``prior_rewards`` gives the trainer those
per-token rewards for ``algorithms.sql``.

Sparse Tsallis entropy (``entropy="tsallis"``, PIN; see ``algorithms.sql``). The policy becomes
``sparsemax(Q)`` and ``V = spmax(Q)``: tokens whose Q-value falls below the state's threshold get
probability exactly 0. Sampling keeps top-k / top-p first, then takes sparsemax over what is left
(the same distribution whenever the support fits in the top-k); greedy is ``argmax Q`` under either
entropy, sparsemax being monotone. Masked actions (-inf) stay at 0. With the LM prior, ``Q`` starts
at ``beta * log pi_LM``, so the support starts as the LM's likeliest tokens (some of those less
than ``1 / beta`` nats below the top one, since ``tau >= max Q - 1``), much as PIN's filter of
ignorable tokens does. The KL reading above is Shannon's alone, though: with ``W`` in place of
``H``, ``r_t = beta * log pi_LM`` is an ordinary per-token reward towards likely tokens, and the LM
is no longer the fixed point of the reward-free problem (``spmax`` of ``log pi_LM`` is not 0), so the
MLP also learns that correction.

Because the LM is frozen, the hidden state at each step of a sampled prompt does not depend on
the MLP; a rollout keeps those states ``[N, L, d]`` (and the LM's log-probabilities when a prior
or the fluency constraint needs them) so the policy's and the target network's Q-values for the
loss are two cheap MLP + head passes, with no second LM forward.

Shapes: N prompts, L prompt tokens, d hidden size, V head rows (the action space).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
from torch import nn
from transformers import DynamicCache

from ..config import Config, ConfigError, option
from ..models import LoadedModel, cache_argument, load_lm, returned_cache
from .action_space import ACTION_SPACES, vocabulary_mask
from .sparsemax import ENTROPIES, action_distribution

AUTO_CONDITION = "auto"  # the task's description; a policy built without a task starts at BOS/EOS instead
EXPLORERS = ("uniform-top-k", "lm")  # the behaviour policies of explore_fraction


@dataclass
class Rollout:
    """Written prompts: ``token_ids [N, L]``, the frozen LM's hidden states before each token
    ``hidden [N, L, d]``, the actions allowed in each state ``allowed [N, L, V]`` (None: the
    static action space only) and ``prior [N, L, V]``, ``log pi_LM`` over the allowed actions
    (None when the policy has no LM prior)."""

    token_ids: torch.Tensor
    hidden: torch.Tensor
    allowed: torch.Tensor | None = None
    prior: torch.Tensor | None = None

    @staticmethod
    def cat(parts: Sequence["Rollout"]) -> "Rollout":
        """The rollouts' prompts as one batch (each part's optional tensors present in all or none)."""
        join = lambda items: None if items[0] is None else torch.cat(items)  # noqa: E731
        return Rollout(*(join([getattr(part, name) for part in parts])
                         for name in ("token_ids", "hidden", "allowed", "prior")))


def adaptor_mlp(hidden_size: int, width: int = 2048, init_std: float = 1e-4) -> nn.Sequential:
    """``Linear(d, width) -> ReLU -> Linear(width, d)`` with RLPrompt's tiny init (see ``init_adaptor``)."""
    mlp = nn.Sequential(nn.Linear(hidden_size, width), nn.ReLU(), nn.Linear(width, hidden_size))
    init_adaptor(mlp, init_std)
    return mlp


@torch.no_grad()
def init_adaptor(mlp: nn.Module, init_std: float = 1e-4, generator: torch.Generator | None = None) -> None:
    """Weights N(0, init_std), biases -init_std (RLPrompt's init): the head sees a near-zero state,
    so the MLP's contribution to the logits starts near zero."""
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


def ban_tokens(allowed: torch.Tensor, banned: torch.Tensor) -> torch.Tensor:
    """``allowed [..., V]`` with the ids in ``banned [..., k]`` switched off (``-1`` entries ban nothing)."""
    padded = torch.cat([allowed, allowed.new_ones(allowed.shape[:-1] + (1,))], dim=-1)
    padded = padded.scatter(-1, banned.masked_fill(banned < 0, allowed.shape[-1]), False)
    return padded[..., :-1]


@dataclass
class PolicyConfig(Config):
    """What the policy may write and how it samples (RLPrompt's values where it has one)."""

    policy_model: str | None = option(None, "policy LM (when omitted: the task LM, --model; beside a masked task LM, "
                                            "distilgpt2, offline smollm2-135m)")
    mlp_width: int = option(2048, "width of the trainable MLP between the frozen LM and its head", at_least=1)
    condition: str | None = option(AUTO_CONDITION, "the text the policy writes the prompt after; auto: the task's "
                                                   "description (task.json 'description', else one derived from the "
                                                   "verbalizers, e.g. 'Classify this text as negative or positive.'); "
                                                   "'' (empty) or null: the BOS/EOS token (RLPrompt); with the LM "
                                                   "prior it decides what the LM proposes")
    top_k: int = option(256, "sample from the top-k tokens (0: all; ignored with --top-p)", at_least=0)
    top_p: float | None = option(None, "nucleus sampling instead of top-k (when omitted: top-k)", above=0,
                                  at_most=1)
    fluent_top_k: int | None = option(None, "only tokens in the top-k of the policy LM's own distribution "
                                            "(when omitted: any token)",
                                      at_least=1)
    prior_weight: float = option(1.0, "Q-values start as BETA * log p_LM (soft Q-learning with a KL penalty "
                                      "towards the policy LM); 0 = RLPrompt's uniform start",
                                 at_least=0, metavar="BETA", aliases=["--lm-prior"])
    action_space: str = option("words+punctuation", "tokens the policy may write: all, whole English words, or words and "
                                      "punctuation", choices=ACTION_SPACES)
    no_repeat: int = option(4, "a token may not repeat any of the previous K tokens (1: no immediate repetition)",
                            at_least=0, metavar="K")
    explore_fraction: float = option(0.0, "share of each step's prompts written by an LM-guided behaviour policy "
                                          "(--explore-with); the action space stays unconstrained",
                                     at_least=0, at_most=1, metavar="FRACTION", aliases=["--lm-explore"])
    explore_with: str = option("uniform-top-k", "the behaviour policy of --explore-fraction: uniform-top-k (uniform "
                                                "over the policy LM's --explore-top-k likeliest tokens) or lm (the "
                                                "policy LM's own distribution, sampled as the policy is with --top-k/"
                                                "--top-p: the untrained policy of the LM prior, so its candidates "
                                                "keep coming while the policy learns)",
                               choices=EXPLORERS)
    explore_top_k: int = option(20, "how many of the LM's likeliest tokens the uniform-top-k behaviour policy "
                                    "draws from", at_least=1, metavar="K", aliases=["--lm-explore-top-k"])
    entropy: str = option("shannon", "the entropy soft Q-learning regularises with: shannon (RLPrompt: softmax "
                                     "policy) or tsallis (PIN: sparse Tsallis, a sparsemax policy that gives "
                                     "low-value tokens probability 0)", choices=ENTROPIES)

    def resolved(self, task=None) -> "PolicyConfig":
        """``condition: auto`` becomes the task's description (its own, or one derived from its verbalizers), said
        in the run's first lines (progress bars off or not)."""
        return dataclasses.replace(self, condition=resolve_condition(self.condition, task))


def resolve_condition(condition: str | None, task) -> str | None:
    """``auto`` as the task's description, said once; any other condition (or no task) passes through."""
    if condition != AUTO_CONDITION or task is None:
        return condition
    source = "the task's description" if task.description else "derived from the task's verbalizers"
    print(f"the policy writes its prompt after {task.describe()!r} ({source})")
    return task.describe()


class LMAdaptorPolicy(nn.Module):
    """Frozen causal LM + trainable MLP before its head; only ``self.mlp`` has parameters to train.

    The options are :class:`PolicyConfig`'s fields, given as ``config`` or as keywords (which override it).
    ``condition``: the text the prompt is written after (the agents give the task's description; None,
    '' or an unresolved ``auto``: the tokenizer's BOS token, or EOS when there is none). ``prior_weight``: beta of the LM prior (module docstring; 0 =
    RLPrompt). ``action_space``: ``all``, ``words`` (whole English words only) or
    ``words+punctuation`` (see ``action_space``). ``no_repeat``: a token may not repeat any of
    the previous ``no_repeat`` tokens (1: no immediate repetition). ``logit_bias``: ``{token_id:
    bias}`` or a ``[V]`` tensor added to every step's logits. ``fluent_top_k``: only tokens within
    the top-k of the frozen LM's own next-token distribution. Special tokens are never allowed
    (``allow_special=True`` to permit). ``top_k``/``top_p`` shape sampling only; everything else
    defines the action space and so also the Q-values the loss sees.

    ``explore_fraction``: that share of each sampled batch is written by a behaviour policy instead
    (``explore_with``): uniform over the frozen LM's ``explore_top_k`` likeliest allowed tokens, or the frozen
    LM's own distribution over the allowed tokens, top-k/top-p filtered as the policy's (LM-guided exploration).
    Soft Q-learning's path-consistency losses hold for any behaviour, so those prompts train the
    Q-values like the policy's own, while the action space stays the whole vocabulary.

    ``entropy``: ``shannon`` samples from ``softmax(Q)``, ``tsallis`` from ``sparsemax(Q)`` (module
    docstring); the trainer's losses follow the policy's choice.
    """

    def __init__(self, lm: LoadedModel | str = "auto", config: PolicyConfig | None = None, *,
                 logit_bias: Mapping[int, float] | torch.Tensor | None = None, allow_special: bool = False,
                 init_std: float = 1e-4, **options):
        super().__init__()
        config = dataclasses.replace(config or PolicyConfig(), **options)  # checks the options' bounds
        self.config = config
        self.lm = lm if isinstance(lm, LoadedModel) else load_lm(lm, role="policy")
        if self.lm.is_encoder_decoder:
            raise ValueError(f"the policy needs a causal LM; {self.lm.spec!r} is an encoder-decoder")
        self.hidden_size = self.lm.model.config.get_text_config(decoder=True).hidden_size
        self.head = self.lm.model.get_output_embeddings()
        self.vocab_size = self.head.weight.shape[0]
        self.init_std = init_std
        self.mlp = adaptor_mlp(self.hidden_size, config.mlp_width, init_std).to(self.lm.device, torch.float32)
        # top-p replaces top-k; top-k 0 samples from every token
        self.top_k, self.top_p = None if config.top_p else (config.top_k or None), config.top_p
        self.fluent_top_k, self.prior_weight = config.fluent_top_k, float(config.prior_weight)
        self.action_space, self.no_repeat = config.action_space, int(config.no_repeat)
        self.explore_fraction, self.explore_top_k = float(config.explore_fraction), int(config.explore_top_k)
        self.explore_with = config.explore_with
        self.explore_share = self.explore_fraction  # the share sampled now (a trainer's explore_gap moves it)
        self.condition = config.condition
        self.entropy = config.entropy
        self.condition_ids = self._condition_ids(config.condition)
        space = self._space(config.action_space, allow_special)
        self.register_buffer("space", space, persistent=False)  # bool [V]: the static action space
        self.register_buffer("bias", self._bias(logit_bias, space), persistent=False)

    # ------------------------------------------------------------------ setup

    def _condition_ids(self, condition: str | None) -> list[int]:
        tokenizer = self.lm.tokenizer
        if condition and condition != AUTO_CONDITION:  # agents resolve auto to the task's description first
            ids = tokenizer.encode(condition, add_special_tokens=False)
            if not ids:
                raise ValueError(f"the policy's conditioning text {condition!r} has no tokens")
            return ids
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        if start is None:
            raise ValueError(f"{self.lm.spec!r} has no BOS or EOS token; give the policy a conditioning text")
        return [start]

    def _space(self, action_space: str, allow_special: bool) -> torch.Tensor:
        space = vocabulary_mask(self.lm.tokenizer, action_space, self.vocab_size)
        if not allow_special:
            space[list(self.lm.tokenizer.all_special_ids)] = False
        space[len(self.lm.tokenizer):] = False  # head rows the tokenizer cannot decode
        if not space.any():
            raise ValueError(f"the action space {action_space!r} leaves no token the policy may choose")
        return space.to(self.lm.device)

    def _bias(self, logit_bias, space: torch.Tensor) -> torch.Tensor:
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
        bias = bias.to(space.device).masked_fill(~space, float("-inf"))
        if torch.isinf(bias).all():
            raise ValueError("the logit bias leaves no token the policy may choose")
        return bias

    def reset_mlp(self, seed: int = 0) -> None:
        """Re-initialise the MLP from ``seed`` (so a run's start depends on its seed alone)."""
        init_adaptor(self.mlp, self.init_std, torch.Generator().manual_seed(seed))

    def target_mlp(self) -> nn.Module:
        """A frozen copy of the MLP: the target network of soft Q-learning."""
        return copy.deepcopy(self.mlp).requires_grad_(False)

    # ------------------------------------------------------------------ Q-values

    @property
    def needs_lm_logits(self) -> bool:
        return bool(self.fluent_top_k) or self.prior_weight > 0

    def q_values(self, hidden: torch.Tensor, allowed: torch.Tensor | None = None, mlp: nn.Module | None = None,
                 prior: torch.Tensor | None = None) -> torch.Tensor:
        """Q-values ``[..., V]`` from LM hidden states ``[..., d]`` through ``mlp`` (default: ours),
        plus ``prior_weight * prior`` (``log pi_LM``) when given."""
        mlp = self.mlp if mlp is None else mlp
        state = mlp(hidden.float()).to(self.head.weight.dtype)
        logits = self.head(state).float() + self.bias
        if prior is not None and self.prior_weight > 0:
            logits = logits + self.prior_weight * prior
        if allowed is not None:
            logits = logits.masked_fill(~allowed, float("-inf"))
        return logits

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """The policy ``[..., V]`` of Q-values ``logits``: softmax, or sparsemax under the Tsallis entropy."""
        return action_distribution(logits, self.entropy)

    def rollout_q_values(self, rollout: Rollout, mlp: nn.Module | None = None) -> torch.Tensor:
        """``q_values`` at every state of a rollout ``[N, L, V]``."""
        return self.q_values(rollout.hidden, rollout.allowed, mlp=mlp, prior=rollout.prior)

    def prior_rewards(self, rollout: Rollout) -> torch.Tensor | None:
        """The dense per-token rewards ``beta * log pi_LM(a_t | s_t)`` ``[N, L]`` (None without a prior)."""
        if rollout.prior is None or self.prior_weight == 0:
            return None
        return self.prior_weight * rollout.prior.gather(-1, rollout.token_ids.unsqueeze(-1)).squeeze(-1)

    @torch.no_grad()
    def constraints(self, hidden: torch.Tensor, banned: torch.Tensor | None = None):
        """``(allowed [..., V] or None, prior [..., V] or None)`` of states ``hidden [..., d]``.

        ``allowed``: the fluency constraint and the ban of ``banned [..., k]`` (recent tokens;
        ``-1`` = none); ``prior``: the frozen LM's log-probabilities over the allowed actions.
        """
        allowed = None
        lm_logits = self.head(hidden).float() if self.needs_lm_logits else None
        if self.fluent_top_k:
            own = lm_logits + self.bias
            top = own.topk(min(self.fluent_top_k, self.vocab_size), dim=-1).indices
            allowed = torch.zeros_like(own, dtype=torch.bool).scatter_(-1, top, True)
        if banned is not None:  # even with nothing to ban yet, so every state of a rollout has a mask
            base = allowed if allowed is not None else self.space.expand(hidden.shape[:-1] + (self.vocab_size,))
            allowed = ban_tokens(base, banned)
        prior = None
        if self.prior_weight > 0:
            usable = self.space if allowed is None else allowed & self.space
            prior = lm_logits.masked_fill(~usable, float("-inf")).log_softmax(-1)
        return allowed, prior

    def explorers(self, num_prompts: int) -> torch.Tensor:
        """Bool ``[N]``: the rows of a sampled batch written by the LM-guided behaviour policy (the last ones)."""
        rows = torch.zeros(num_prompts, dtype=torch.bool, device=self.lm.device)
        count = round(self.explore_share * num_prompts)
        if count:
            rows[num_prompts - count:] = True
        return rows

    def behaviour_probabilities(self, hidden: torch.Tensor, logits: torch.Tensor,
                                prior: torch.Tensor | None = None) -> torch.Tensor:
        """The behaviour policy's (unnormalised) probabilities ``[N, V]`` at states ``hidden [N, d]``, over the
        tokens the policy's Q-values ``logits [N, V]`` allow; ``prior`` (``log pi_LM``) saves the LM's head."""
        lm_logits = prior if prior is not None else self.head(hidden).float() + self.bias
        lm_logits = lm_logits.masked_fill(~torch.isfinite(logits), float("-inf"))
        if self.explore_with == "lm":
            return filter_top_k_top_p(lm_logits, self.top_k, self.top_p).softmax(-1)
        return filter_top_k_top_p(lm_logits, self.explore_top_k).isfinite().float()

    def recent_tokens(self, token_ids: torch.Tensor) -> torch.Tensor | None:
        """For each position t of ``token_ids [N, L]``, the ``no_repeat`` tokens before it ``[N, L, k]`` (-1 pads)."""
        if not self.no_repeat:
            return None
        n, length = token_ids.shape
        padded = torch.cat([token_ids.new_full((n, self.no_repeat), -1), token_ids], dim=1)
        return torch.stack([padded[:, t:t + self.no_repeat] for t in range(length)], dim=1)

    # ------------------------------------------------------------------ the frozen LM

    @torch.no_grad()
    def _condition_cache(self, batch: int):
        """Hidden state after the conditioning text ``[N, d]`` and a fresh KV cache for N rows."""
        if not hasattr(self, "_condition_state"):
            ids = torch.tensor([self.condition_ids], device=self.lm.device)
            out = self.lm.model.base_model(input_ids=ids, use_cache=True)
            self._condition_state = (out.last_hidden_state[:, -1], [(k, v) for k, v, *_ in returned_cache(out)])
        last, layers = self._condition_state
        cache = DynamicCache(ddp_cache_data=[(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1))
                                             for k, v in layers], config=self.lm.model.config)
        return last.expand(batch, -1), cache

    @torch.no_grad()
    def teacher_forcing(self, token_ids: torch.Tensor) -> Rollout:
        """The rollout that writes the given prompt tokens ``[N, L]`` (one cached forward)."""
        token_ids = torch.as_tensor(token_ids, device=self.lm.device).long()
        first, cache = self._condition_cache(token_ids.shape[0])
        states = [first[:, None]]
        if token_ids.shape[1] > 1:
            out = self.lm.model.base_model(input_ids=token_ids[:, :-1], use_cache=True,
                                             **cache_argument(self.lm.model.base_model, cache))
            states.append(out.last_hidden_state)
        return self.replayed_rollout(token_ids, torch.cat(states, dim=1))  # hidden [N, L, d]

    @torch.no_grad()
    def replayed_rollout(self, token_ids: torch.Tensor, hidden: torch.Tensor) -> Rollout:
        """The rollout of prompts written earlier, from their tokens ``[N, L]`` and the frozen LM's hidden states
        before each token ``[N, L, d]`` (kept from that rollout): the constraints and the prior are recomputed
        from the states, so the LM itself does not run again."""
        allowed, prior = self.constraints(hidden, self.recent_tokens(token_ids))
        return Rollout(token_ids, hidden, allowed, prior)

    def writer(self, num_prompts: int, *, generator: torch.Generator | None = None, greedy: bool = False,
               prefixes: Sequence[Sequence[int]] = ()) -> "PromptWriter":
        """Write ``num_prompts`` prompts one token at a time (what an environment loop needs); the first
        ``len(prefixes)`` prompts begin with the given tokens."""
        return PromptWriter(self, num_prompts, generator=generator, greedy=greedy, prefixes=prefixes)

    def sample(self, num_prompts: int, length: int, *, generator: torch.Generator | None = None,
               greedy: bool = False) -> Rollout:
        """Sample ``num_prompts`` prompts of ``length`` tokens (greedy: argmax), with no environment."""
        writer = self.writer(num_prompts, generator=generator, greedy=greedy)
        for step in range(length):
            actions = writer.choose()
            if step + 1 < length:
                writer.feed(actions)
        return writer.rollout()

    def greedy(self, length: int) -> Rollout:
        return self.sample(1, length, greedy=True)

    def decode(self, token_ids: torch.Tensor | Sequence[Sequence[int]]) -> list[str]:
        return [self.lm.tokenizer.decode(list(map(int, row))) for row in token_ids]

    # ------------------------------------------------------------------ warm start

    def warm_start(self, token_ids: Sequence[int], *, min_prob: float = 0.5, lr: float = 1e-3,
                   max_steps: int = 1000) -> int:
        """Fit the MLP so the greedy prompt starts with ``token_ids``: teacher-forced cross-entropy
        until each of them has probability >= ``min_prob`` under the policy (softmax or sparsemax), so
        it is the argmax while sampling still explores around it. Returns the number of optimiser steps
        taken."""
        ids = torch.tensor([list(token_ids)], device=self.lm.device)
        rollout = self.teacher_forcing(ids)
        with torch.no_grad():
            blocked = ~torch.isfinite(self.rollout_q_values(rollout)).gather(-1, ids.unsqueeze(-1)).squeeze(-1)[0]
        if blocked.any():
            bad = [self.lm.tokenizer.decode([int(ids[0, i])]) for i in blocked.nonzero().flatten().tolist()]
            raise ConfigError("init_prompt", f"has tokens {bad} outside the policy's action space (--action-space "
                                             f"{self.action_space}, --no-repeat {self.no_repeat}, --fluent-top-k "
                                             f"{self.fluent_top_k}): choose a prompt the policy may write")
        optimizer = torch.optim.Adam(self.mlp.parameters(), lr=lr)
        for step in range(max_steps + 1):
            logits = self.rollout_q_values(rollout)
            logp = logits.log_softmax(-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
            probs = (logp.exp() if self.entropy == "shannon"
                     else self.probabilities(logits.detach()).gather(-1, ids.unsqueeze(-1)))
            if probs.min() >= min_prob:
                return step
            if step == max_steps:
                break
            optimizer.zero_grad(set_to_none=True)
            (-logp.mean()).backward()
            optimizer.step()
        raise RuntimeError(f"the warm start did not reach probability {min_prob} for every token of "
                           f"{self.lm.tokenizer.decode(list(token_ids))!r} in {max_steps} steps; raise lr or max_steps")


class PromptWriter:
    """N prompts being written by the policy, one token per ``choose``; ``feed`` tells the frozen LM
    which tokens were written (from an environment's observation, or the choice itself).

    ``prefixes``: prompt ``i`` begins with ``prefixes[i]`` (those tokens are chosen for it, and the policy or
    the behaviour policy writes the rest); soft Q-learning is off-policy, so such rows train the policy as any."""

    def __init__(self, policy: LMAdaptorPolicy, num_prompts: int, *, generator: torch.Generator | None = None,
                 greedy: bool = False, prefixes: Sequence[Sequence[int]] = ()):
        if len(prefixes) > num_prompts:
            raise ValueError(f"{len(prefixes)} prefixes for {num_prompts} prompts: at most one a prompt")
        self.policy, self.generator, self.greedy = policy, generator, greedy
        self.prefixes = [list(map(int, prefix)) for prefix in prefixes]
        self.hidden, self.cache = policy._condition_cache(num_prompts)
        self.tokens: list[torch.Tensor] = []
        self.states: list[tuple] = []  # (hidden, allowed, prior) before each token

    @torch.no_grad()
    def choose(self) -> torch.Tensor:
        """The next token of every prompt ``[N]`` (sampled, or the argmax when greedy)."""
        policy = self.policy
        banned = None
        if policy.no_repeat:
            recent = self.tokens[-policy.no_repeat:]
            banned = torch.stack(recent, 1) if recent else self.hidden.new_full((self.hidden.shape[0], 0), -1).long()
        allowed, prior = policy.constraints(self.hidden, banned)
        logits = policy.q_values(self.hidden, allowed, prior=prior)  # [N, V]
        if self.greedy:
            action = logits.argmax(-1)
        else:
            probs = policy.probabilities(filter_top_k_top_p(logits, policy.top_k, policy.top_p))
            explorers = policy.explorers(len(probs))
            if explorers.any():  # behaviour rows: drawn from the frozen LM over the tokens the policy may take
                probs[explorers] = policy.behaviour_probabilities(self.hidden[explorers], logits[explorers],
                                                                  None if prior is None else prior[explorers])
            action = torch.multinomial(probs.cpu(), 1, generator=self.generator).squeeze(-1).to(logits.device)
        position = len(self.tokens)
        for row, prefix in enumerate(self.prefixes):
            if position < len(prefix):
                action[row] = prefix[position]
        self.states.append((self.hidden, allowed, prior))
        self.tokens.append(action)
        return action

    @torch.no_grad()
    def feed(self, tokens: torch.Tensor) -> None:
        """Advance the frozen LM by one written token per prompt ``[N]``."""
        tokens = torch.as_tensor(tokens, device=self.policy.lm.device).long().view(-1, 1)
        out = self.policy.lm.model.base_model(input_ids=tokens, use_cache=True,
                                              **cache_argument(self.policy.lm.model.base_model, self.cache))
        self.cache, self.hidden = returned_cache(out), out.last_hidden_state[:, -1]

    def rollout(self) -> Rollout:
        hidden = torch.stack([h for h, _, _ in self.states], 1)
        stack = lambda items: torch.stack(items, 1) if items[0] is not None else None  # noqa: E731
        return Rollout(torch.stack(self.tokens, 1), hidden, stack([a for _, a, _ in self.states]),
                       stack([p for _, _, p in self.states]))
