"""Comparison agents behind one fit(task, ...) -> LearnedPrompt interface.

``get_agent(name, **options)`` builds one by name: ``rlprompt`` (soft Q-learning, discrete),
``soft-prompt`` (Lester et al.), ``pez`` (Wen et al.; with ``ppl_weight`` > 0 the perplexity-
penalised variant), ``wayward`` (Khashabi et al.), ``grpo`` and ``rloo`` (TRL's trainers fine-tune
the policy LM to write the prompt). Agent modules load on first use.
"""

from __future__ import annotations

import importlib

from .base import Agent

# name -> "module:class"
AGENTS = {
    "rlprompt": "rlprompt_interp.agents.rlprompt:RLPromptAgent",
    "soft-prompt": "rlprompt_interp.agents.soft_prompt:SoftPromptAgent",
    "pez": "rlprompt_interp.agents.pez:PEZAgent",
    "wayward": "rlprompt_interp.agents.wayward:WaywardAgent",
    "grpo": "rlprompt_interp.agents.trl_agents:GRPOAgent",
    "rloo": "rlprompt_interp.agents.trl_agents:RLOOAgent",
}


def list_agents() -> list[str]:
    return sorted(AGENTS)


def agent_class(name: str) -> type[Agent]:
    if name not in AGENTS:
        raise KeyError(f"unknown agent {name!r}; choose one of {list_agents()}")
    module, _, cls = AGENTS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def get_agent(name: str, **options) -> Agent:
    """An agent by name, built with its options (e.g. ``get_agent("pez", ppl_weight=0.01, lr=0.1)``)."""
    return agent_class(name)(**options)


__all__ = ["AGENTS", "Agent", "agent_class", "get_agent", "list_agents"]
