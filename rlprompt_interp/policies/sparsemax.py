"""Sparsemax and its maximum, the sparse Tsallis counterparts of softmax and logsumexp.

Shannon: ``softmax(z) = argmax_{p in simplex} <p, z> + H(p)`` and the maximum is ``logsumexp(z)``.
Sparse Tsallis entropy (q = 2) ``W(p) = 1/2 sum_a p_a (1 - p_a) = 1/2 (1 - ||p||^2)`` in place of
``H`` turns the argmax into the Euclidean projection of ``z`` onto the simplex (Martins and Astudillo
2016; Lee, Choi and Oh 2018), ``sparsemax(z)_a = max(z_a - tau(z), 0)``: with ``z`` sorted in
decreasing order, the support ``S`` holds the k largest entries for the largest k with
``1 + k z_(k) > sum_{j<=k} z_(j)``, and ``tau = (sum_{a in S} z_a - 1) / |S|``. The maximum is

    spmax(z) = <p, z> + W(p) = 1/2 sum_{a in S} (z_a^2 - tau^2) + 1/2 = tau + 1/2 + 1/2 ||p||^2,

the last form by ``z_a = p_a + tau`` on ``S``; it is the one computed, since it never squares a
masked entry. ``max z <= spmax(z) <= max z + 1/2`` (``logsumexp`` allows ``+ log V``), and the
gradient of ``spmax`` is ``sparsemax``, as ``logsumexp``'s is ``softmax``.

Masked actions (``-inf``) get probability exactly 0 and gradient 0; a row with no finite entry gives
NaN, as softmax does. Everything acts on the last dimension.
"""

from __future__ import annotations

import torch

ENTROPIES = ("shannon", "tsallis")


def _shifted(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(z - c, tau(z) - c, |S|, c)`` with ``c = max z`` (sparsemax is shift-invariant: working near 0
    keeps float32's precision for ``z - tau``); ``c`` is detached, which leaves every gradient exact."""
    top = z.detach().max(-1, keepdim=True).values
    shifted = z - top
    # p_max = max z - tau <= 1, so tau >= max z - 1 and only entries above it can be in S: sorting just
    # those (a top-k, linear in V) gives the same support as sorting all V, which dominated a Tsallis update
    candidates = int((shifted.detach() > -1).sum(-1).max().clamp(min=1)) if shifted.numel() else 1
    ordered = shifted.topk(min(candidates, z.shape[-1]), dim=-1).values
    ranks = torch.arange(1, ordered.shape[-1] + 1, device=z.device, dtype=ordered.dtype)
    cumulative = ordered.cumsum(-1)
    # the condition holds for a prefix of the sorted entries (-inf ones fail it: -inf > -inf is False)
    size = (1 + ranks * ordered > cumulative).sum(-1, keepdim=True).clamp(min=1)
    tau = (cumulative.gather(-1, size - 1) - 1) / size.to(ordered.dtype)
    return shifted, tau, size, top


def sparsemax_threshold(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(tau [..., 1], |S| [..., 1])`` of ``z [..., V]``."""
    _, tau, size, top = _shifted(z)
    return tau + top, size


def sparsemax(z: torch.Tensor) -> torch.Tensor:
    """``max(z - tau(z), 0)``: probabilities summing to 1, exactly 0 outside the support."""
    shifted, tau, _, _ = _shifted(z)
    return (shifted - tau).clamp(min=0)


def spmax(z: torch.Tensor) -> torch.Tensor:
    """The sparse soft maximum ``tau + 1/2 + 1/2 ||sparsemax(z)||^2`` ``[...]`` (module docstring)."""
    shifted, tau, _, top = _shifted(z)
    p = (shifted - tau).clamp(min=0)
    return (tau + 0.5 + 0.5 * (p * p).sum(-1, keepdim=True) + top).squeeze(-1)


def tsallis_entropy(p: torch.Tensor) -> torch.Tensor:
    """``W(p) = 1/2 (1 - ||p||^2)`` ``[...]``: 0 for a one-hot policy, at most ``1/2 (1 - 1/V)``."""
    return 0.5 * (1 - (p * p).sum(-1))


def action_distribution(logits: torch.Tensor, entropy: str = "shannon") -> torch.Tensor:
    """The policy of Q-values ``logits``: ``softmax`` (shannon) or ``sparsemax`` (tsallis)."""
    check_entropy(entropy)
    return sparsemax(logits) if entropy == "tsallis" else logits.softmax(-1)


def state_value(logits: torch.Tensor, entropy: str = "shannon") -> torch.Tensor:
    """``V(s)`` of Q-values ``logits [..., V]``: ``logsumexp`` (shannon) or ``spmax`` (tsallis), ``[...]``."""
    check_entropy(entropy)
    return spmax(logits) if entropy == "tsallis" else logits.logsumexp(-1)


def check_entropy(entropy: str) -> None:
    if entropy not in ENTROPIES:
        raise ValueError(f"unknown entropy regulariser {entropy!r}; choose one of {list(ENTROPIES)}")
