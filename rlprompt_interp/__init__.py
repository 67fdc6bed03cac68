"""rlprompt-interp: learn discrete, readable prompts with RL and measure how interpretable they are."""

__version__ = "0.1.0"

from .registration import ENV_ID, register as _register_envs  # noqa: E402  (gymnasium ids, no torch import)

_register_envs()
