"""Soft Q-learning with a sparse terminal reward: the RLPrompt objective.

The policy's logits are its Q-values: ``Q(s_t, a) = logits[t, a]``, ``V(s_t) = logsumexp_a Q(s_t, a)``
and the advantage ``A_t = Q(s_t, a_t) - V(s_t)`` is the log-probability of the action taken. With
reward 0 before the last token and ``R`` after it, the soft Bellman equation reads
``Q(s_t, a_t) = V(s_{t+1})`` (``= R`` at the last step). Four regression losses follow, each the
squared error between a quantity of one network and a target built from the other:

* single-step: ``A_t`` vs ``V'(s_{t+1}) - V'(s_t)`` (``R - V'(s_L)`` at the last step);
* multi-step (path consistency): ``sum_{k>=t} A_k`` vs ``R - V'(s_t)``;
* the *reversed* forms swap the roles: the target network's quantity is regressed onto a target
  built from the policy, so the gradient reaches the policy through its ``V``.

Dense per-token rewards ``r_t`` (``token_rewards``, e.g. the LM prior's ``beta * log pi_LM(a_t|s_t)``,
see ``policies.lm_adaptor``) enter the same equations: ``Q(s_t, a_t) = r_t + V(s_{t+1})``, so the
single-step target gains ``r_t`` and the multi-step target ``sum_{k>=t} r_k``.

``'`` marks the target network, a slowly updated copy of the policy (Polyak averaging, rate 1e-3,
or a periodic copy). The default ``mix`` averages all four, as RLPrompt does.

Sparse Tsallis entropy (``entropy="tsallis"``, PIN: Choi et al. 2024, after Lee, Choi and Oh 2018).
Soft Q-learning maximises ``E[sum_t r_t] + sum_t H(pi(.|s_t))``; the maximum over ``pi`` of
``sum_a pi_a Q(s, a) + H(pi)`` is ``V = logsumexp Q``, reached at ``pi = softmax Q``, hence
``Q - V = log pi``. Put ``W(pi) = 1/2 sum_a pi_a (1 - pi_a)`` in place of ``H`` and the same maximum
is reached at ``pi = sparsemax Q`` (tokens below the threshold ``tau`` get probability 0), with value
``V = spmax Q = 1/2 sum_{a in S} (Q_a^2 - tau^2) + 1/2`` (``policies.sparsemax``; temperature 1,
as in the Shannon case). A temperature ``alpha`` (``E[sum_t r_t] + alpha W``, policy ``sparsemax(Q/alpha)``)
needs no option of its own: dividing the objective by ``alpha`` gives the same policy with every reward
divided by ``alpha``, so it is the terminal rewards' scale and the LM prior's beta divided by ``alpha``
(``--shaped-range``, ``--prior-weight``; the SST-2 sweep's arm keys ``scale=``, ``prior=``).
The Bellman equation ``Q(s_t, a_t) = r_t + V(s_{t+1})`` is unchanged, and
it is the only equation the four losses rest on, so each keeps its form with ``V = spmax``:

* single-step: ``Q(s_t, a_t) - V(s_t)`` vs ``r_t + V'(s_{t+1}) - V'(s_t)`` (``R`` for ``V'(s_L)``);
* multi-step: the sum telescopes along any path, ``sum_{k>=t} (Q(s_k, a_k) - V(s_k)) = R + sum_{k>=t} r_k - V(s_t)``;
* reversed forms as above; their gradient reaches the policy through ``V``, i.e. through ``sparsemax Q``.

What no longer holds is ``A_t = log pi(a_t|s_t)``: on the support ``A_t = pi(a_t|s_t) - 1/2 (1 + ||pi||^2)``,
off it ``A_t`` is below that. Sparse PCL (Chow, Nachum and Ghavamzadeh 2018) learns ``pi`` and ``V``
as separate functions, so it writes its consistency in ``pi``, an equality on the support only; here
both are functions of ``Q``, so the Q-form holds for every action, sampled by the policy or by a
behaviour policy (``explore_fraction``), and every loss (and ``mix``) is available under either entropy.

Shapes: ``logits``/``target_logits`` ``[N, L, V]``, ``actions`` ``[N, L]``, ``rewards`` ``[N]``,
``token_rewards`` ``[N, L]``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..notices import deprecated_names
from ..policies.sparsemax import check_entropy, state_value

MIXED_LOSSES = ("single", "single_reversed", "multi", "multi_reversed")  # the terms "mix" averages
LOSSES = ("mix", *MIXED_LOSSES)  # every loss sql_loss computes: SQLConfig.loss's choices
__getattr__ = deprecated_names(__name__, {"MODES": ("LOSSES", LOSSES)})  # MODES was a second name for the losses


def action_values(logits: torch.Tensor, actions: torch.Tensor,
                  entropy: str = "shannon") -> tuple[torch.Tensor, torch.Tensor]:
    """``(Q(s_t, a_t), V(s_t))``, each ``[N, L]``; ``V`` is ``logsumexp`` (shannon) or ``spmax`` (tsallis)."""
    q = logits.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    v = state_value(logits, entropy)
    return q, v


def single_step_loss(logits: torch.Tensor, target_logits: torch.Tensor, actions: torch.Tensor,
                     rewards: torch.Tensor, token_rewards: torch.Tensor | None = None,
                     entropy: str = "shannon") -> torch.Tensor:
    """Per-token squared error ``[N, L]`` of ``A_t`` (``logits``) against ``r_t + V'(s_{t+1}) - V'(s_t)``
    (``target_logits``)."""
    q, v = action_values(logits, actions, entropy)
    _, v_target = action_values(target_logits, actions, entropy)
    next_v = torch.cat([v_target[:, 1:], rewards[:, None].to(v_target)], dim=1)  # V'(s_{t+1}), R at the end
    target = next_v - v_target if token_rewards is None else token_rewards.to(v_target) + next_v - v_target
    return (q - v - target) ** 2


def multi_step_loss(logits: torch.Tensor, target_logits: torch.Tensor, actions: torch.Tensor,
                    rewards: torch.Tensor, token_rewards: torch.Tensor | None = None,
                    entropy: str = "shannon") -> torch.Tensor:
    """Per-token squared error ``[N, L]`` of ``sum_{k>=t} A_k`` (``logits``) against
    ``R + sum_{k>=t} r_k - V'(s_t)``."""
    q, v = action_values(logits, actions, entropy)
    _, v_target = action_values(target_logits, actions, entropy)
    advantage_to_go = (q - v).flip(1).cumsum(1).flip(1)  # sum over k >= t
    return_to_go = rewards[:, None].to(v_target)
    if token_rewards is not None:
        return_to_go = return_to_go + token_rewards.to(v_target).flip(1).cumsum(1).flip(1)
    return (advantage_to_go - (return_to_go - v_target)) ** 2


def sql_loss(logits: torch.Tensor, target_logits: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor,
             mode: str = "mix", token_rewards: torch.Tensor | None = None,
             entropy: str = "shannon") -> tuple[torch.Tensor, dict[str, float]]:
    """The scalar loss (mean over prompts and tokens) and each component's value for logging.

    ``logits`` carry the policy's gradient; ``target_logits`` come from the target network (no grad).
    ``entropy``: the regulariser, ``shannon`` (RLPrompt) or ``tsallis`` (PIN), which decides ``V``.
    """
    if mode not in LOSSES:
        raise ValueError(f"unknown soft Q-learning loss {mode!r}; choose one of {list(LOSSES)}")
    check_entropy(entropy)
    if logits.shape != target_logits.shape or logits.shape[:2] != actions.shape or rewards.shape != actions.shape[:1]:
        raise ValueError(f"shape mismatch: logits {list(logits.shape)}, target {list(target_logits.shape)}, "
                         f"actions {list(actions.shape)}, rewards {list(rewards.shape)}")
    if token_rewards is not None and token_rewards.shape != actions.shape:
        raise ValueError(f"token_rewards {list(token_rewards.shape)} must match actions {list(actions.shape)}")
    target_logits = target_logits.detach()
    r = None if token_rewards is None else token_rewards.detach()
    terms = {
        "single": lambda: single_step_loss(logits, target_logits, actions, rewards, r, entropy),
        "single_reversed": lambda: single_step_loss(target_logits, logits, actions, rewards, r, entropy),
        "multi": lambda: multi_step_loss(logits, target_logits, actions, rewards, r, entropy),
        "multi_reversed": lambda: multi_step_loss(target_logits, logits, actions, rewards, r, entropy),
    }
    names = MIXED_LOSSES if mode == "mix" else (mode,)
    values = {name: terms[name]().mean() for name in names}
    loss = torch.stack(list(values.values())).mean()
    return loss, {f"loss/{name}": float(value.detach()) for name, value in values.items()}


@torch.no_grad()
def polyak_update(target: nn.Module, online: nn.Module, rate: float = 1e-3) -> None:
    """``target <- (1 - rate) * target + rate * online``, parameter by parameter."""
    for t, o in zip(target.parameters(), online.parameters()):
        t.lerp_(o, rate)


@torch.no_grad()
def copy_update(target: nn.Module, online: nn.Module) -> None:
    target.load_state_dict(online.state_dict())


class TargetUpdater:
    """Keeps the target network behind the policy: ``polyak`` every step, or ``copy`` every ``period`` steps."""

    def __init__(self, mode: str = "polyak", rate: float = 1e-3, period: int = 100):
        if mode not in ("polyak", "copy"):
            raise ValueError(f"unknown target update {mode!r}; choose 'polyak' or 'copy'")
        if mode == "polyak" and not 0.0 < rate <= 1.0:
            raise ValueError(f"the Polyak rate must be in (0, 1], got {rate}")
        if mode == "copy" and period < 1:
            raise ValueError(f"the copy period must be at least 1 step, got {period}")
        self.mode, self.rate, self.period = mode, rate, period

    def __call__(self, target: nn.Module, online: nn.Module, step: int) -> None:
        """Call after optimiser step number ``step`` (1-based)."""
        if self.mode == "polyak":
            polyak_update(target, online, self.rate)
        elif step % self.period == 0:
            copy_update(target, online)
