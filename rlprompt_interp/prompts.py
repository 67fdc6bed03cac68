"""LearnedPrompt: what every agent returns, and what every evaluation reads.

A learned prompt is a token sequence (discrete methods), a matrix of continuous embeddings
(soft prompts), or both (PEZ keeps the continuous prompt and its projection). It carries its
training curve and enough provenance to reproduce it, and saves to a folder as ``prompt.json``
plus ``embeddings.safetensors`` when there are embeddings.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from . import __version__
from .atomic import write_atomic, write_json_atomic

PROMPT_FILE = "prompt.json"
EMBEDDINGS_FILE = "embeddings.safetensors"


class PromptFileError(ValueError):
    """A learned-prompt folder whose files cannot be read; the message names the file and the fix."""


@dataclass
class LearnedPrompt:
    """A prompt an agent learned.

    ``token_ids`` are the task LM's tokens (never re-tokenised from ``text``); ``embeddings`` is
    ``[prompt_length, hidden]`` for soft prompts; ``curve`` holds one dict per logged step;
    ``provenance`` records model, task, method, seed, config and package version.
    """

    text: str
    token_ids: list[int] | None = None
    embeddings: torch.Tensor | None = None
    scores: dict = field(default_factory=dict)
    curve: list[dict] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)

    def __post_init__(self):
        self.provenance.setdefault("package_version", __version__)
        if self.token_ids is None and self.embeddings is None and self.text == "":
            self.token_ids = []

    @classmethod
    def from_text(cls, text: str, tokenizer) -> "LearnedPrompt":
        """A written prompt (a hand template, no prompt) as the task LM's ``tokenizer`` reads it, scored like a
        learned one."""
        return cls(text=text, token_ids=tokenizer.encode(text, add_special_tokens=False))

    @property
    def is_soft(self) -> bool:
        return self.embeddings is not None

    @property
    def method(self) -> str | None:
        return self.provenance.get("method")

    def save(self, folder: str | Path) -> Path:
        """Write ``prompt.json`` (and ``embeddings.safetensors``) atomically into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        payload = asdict(self)
        payload.pop("embeddings")
        payload["has_embeddings"] = self.embeddings is not None
        if self.embeddings is not None:
            write_atomic(folder / EMBEDDINGS_FILE,
                    lambda path: save_file({"embeddings": self.embeddings.detach().float().cpu().contiguous()}, path))
        write_json_atomic(folder / PROMPT_FILE, payload)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "LearnedPrompt":
        """Read a folder written by ``save``; a missing, cut-short or foreign file is a :class:`PromptFileError`."""
        folder = Path(folder)
        path = folder / PROMPT_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{folder} holds no learned prompt ({PROMPT_FILE} is missing)")
        fix = "restore it from a copy, or train the prompt again"
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise PromptFileError(f"{path} is not valid JSON ({error}): the file was cut short or edited; {fix}") from None
        known = {f.name for f in fields(cls)} - {"embeddings"}
        if not isinstance(payload, dict) or not isinstance(payload.get("text"), str):
            raise PromptFileError(f"{path} is not a learned prompt (it needs a 'text' string); {fix}")
        unknown = sorted(set(payload) - known - {"has_embeddings"})
        if unknown:
            raise PromptFileError(f"{path} has unknown keys {unknown} (allowed: {sorted(known)}); {fix}")
        embeddings = None
        if payload.pop("has_embeddings", False):
            try:
                embeddings = load_file(str(folder / EMBEDDINGS_FILE))["embeddings"]
            except Exception as error:  # safetensors raises several types for a missing or truncated file
                raise PromptFileError(f"{folder / EMBEDDINGS_FILE} is missing or unreadable ({error}) but {path} "
                                      f"says the prompt has embeddings; {fix}") from None
        return cls(embeddings=embeddings, **payload)

    def classify(self, texts, lm=None, *, task=None, batch_size: int = 32, progress: bool = False):
        """Label new texts with this prompt, as ``eval`` would: ``prompt.classify(["a warm film"], lm).labels``.

        ``texts``: strings (or dicts of the template's fields); ``lm``: the task LM, a ``LoadedModel`` or a
        spec (default: the one the prompt was trained with, in fp32 as ``eval`` loads it); ``task``: a task
        whose template and verbalizers to use (default: the ones the prompt was trained with). Returns
        ``prediction.Predictions``: ``.labels``, ``.indices``, ``.probabilities`` and ``.rows()``.
        """
        from .models import EVAL_DTYPE, LoadedModel, load_lm
        from .prediction import classify
        from .tasks.recorded import recorded_task

        if not isinstance(lm, LoadedModel):
            lm = load_lm(task_model(self, lm), role="task", dtype=EVAL_DTYPE)
        return classify(task or recorded_task(self.provenance), lm, self, texts, batch_size=batch_size,
                        progress=progress)


def task_model(prompt: "LearnedPrompt | str | None", model: str | None = "auto") -> str:
    """The task LM to load: ``model``, or for ``auto`` the one a learned prompt was trained with."""
    if model not in (None, "auto") or not isinstance(prompt, LearnedPrompt):
        return model or "auto"
    return prompt.provenance.get("task_model", prompt.provenance.get("model", "auto"))
