"""Gymnasium environments for prompt writing; importing this module registers ``rlprompt_interp/Prompt-v0``."""

from .prompt_env import ENV_ID, PromptEnv, PromptVectorEnv, register

register()

__all__ = ["ENV_ID", "PromptEnv", "PromptVectorEnv", "register"]
