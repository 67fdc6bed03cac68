"""Which model ``auto`` names: the paper's when the Hugging Face hub can be reached, the embedded one offline; the
policy beside a masked task LM."""

from __future__ import annotations

import functools
import os
import socket

from .base import LoadedModel
from .random_models import RANDOM_PREFIX

OFFLINE_DEFAULT = "smollm2-135m"
PAPER_DEFAULTS = {"policy": "distilgpt2", "task": "distilgpt2", "scorer": "gpt2-xl", "seq2seq": "t5-small"}


@functools.lru_cache(maxsize=1)
def hub_reachable(timeout: float = 2.0) -> bool:
    """Whether the Hugging Face hub can be reached (False at once under ``HF_HUB_OFFLINE=1``)."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def default_model(role: str = "task") -> str:
    """The paper's model for ``role`` when the hub is reachable, else the embedded default."""
    if role not in PAPER_DEFAULTS:
        raise ValueError(f"unknown model role {role!r}; one of {sorted(PAPER_DEFAULTS)}")
    return PAPER_DEFAULTS[role] if hub_reachable() else OFFLINE_DEFAULT


def resolve_spec(spec: str | None, role: str = "task") -> str:
    return default_model(role) if spec in (None, "", "auto") else spec


def policy_for(task_lm: LoadedModel) -> str:
    """The policy an RL agent uses when none is named: the task model itself, unless that is a masked LM
    (a policy writes left to right), then a causal model of the same family: tiny-gpt2 beside tiny-roberta,
    random:distilgpt2 beside a random RoBERTa shape, else the paper's distilgpt2 (smollm2-135m offline)."""
    if not task_lm.is_masked_lm:
        return task_lm.spec
    if task_lm.spec.startswith("tiny-"):
        return "tiny-gpt2"
    if task_lm.spec.startswith(RANDOM_PREFIX):
        return f"{RANDOM_PREFIX}distilgpt2"
    return default_model("policy")
