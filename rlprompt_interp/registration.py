"""The gymnasium ids of the package, registered on ``import rlprompt_interp`` as gymnasium packages do.

The entry points are strings, so registering imports neither torch nor the environments: gymnasium
imports ``rlprompt_interp.envs.prompt_env`` only when ``gymnasium.make`` builds one.
"""

from __future__ import annotations

ENV_ID = "rlprompt_interp/Prompt-v0"


def register() -> None:
    """Register ``rlprompt_interp/Prompt-v0`` (single and vector entry points) with gymnasium, once."""
    import gymnasium

    if ENV_ID not in gymnasium.registry:
        gymnasium.register(id=ENV_ID, entry_point="rlprompt_interp.envs.prompt_env:PromptEnv",
                           vector_entry_point="rlprompt_interp.envs.prompt_env:PromptVectorEnv")
