"""Gymnasium environments for prompt writing; ``import rlprompt_interp`` registers ``rlprompt_interp/Prompt-v0``."""

from .prompt_env import ENV_ID, PromptEnv, PromptVectorEnv, register

register()

__all__ = ["ENV_ID", "PromptEnv", "PromptVectorEnv", "register"]
