"""Policies that write prompts token by token."""

from .action_space import ACTION_SPACES, vocabulary_mask
from .lm_adaptor import AUTO_CONDITION, LMAdaptorPolicy, PolicyConfig, PromptWriter, Rollout, adaptor_mlp, filter_top_k_top_p, init_adaptor

__all__ = ["ACTION_SPACES", "AUTO_CONDITION", "LMAdaptorPolicy", "PolicyConfig", "PromptWriter", "Rollout", "vocabulary_mask", "adaptor_mlp",
           "filter_top_k_top_p", "init_adaptor"]
