"""Policies that write prompts token by token."""

from .lm_adaptor import LMAdaptorPolicy, Rollout, adaptor_mlp, filter_top_k_top_p, init_adaptor

__all__ = ["LMAdaptorPolicy", "Rollout", "adaptor_mlp", "filter_top_k_top_p", "init_adaptor"]
