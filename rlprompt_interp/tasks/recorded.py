"""Score a learned prompt with the task definition it was trained with.

A learned prompt's provenance records the template and verbalizers of its training run. A prompt
trained with " negative"/" positive" means nothing under the built-in " terrible"/" great" (it
scored 0.499 that way and 0.827 with its own), so evaluations take the recorded definition unless
the user gives another, and say which they used; a given one that differs from the recorded one
is named in a warning.
"""

from __future__ import annotations

import string

from ..notices import warn
from .data import TaskDataError
from .task import ClassificationTask
from .templates import MASK_SLOT, Template


def use_recorded_definition(task: ClassificationTask, provenance: dict, *, template: str | None = None,
                            verbalizers: list[str] | None = None) -> tuple[ClassificationTask, dict]:
    """``task`` with the template and verbalizers recorded in ``provenance``, where the user gave none.

    ``template`` / ``verbalizers`` are what the user gave (already in ``task``), None where they gave
    nothing. The recorded definition applies when the prompt was learned on a task of the same name
    (or names none): a prompt moved to another task is scored with that task's own definition.
    Returns the task and ``{"template", "template_from", "verbalizers", "verbalizers_from"}``.
    """
    learned_on = provenance.get("task")
    same_task = learned_on in (None, task.name)
    recorded = {"template": provenance.get("template") if same_task else None,
                "verbalizers": list(provenance["verbalizers"]) if same_task and provenance.get("verbalizers") else None}
    given = {"template": template, "verbalizers": list(verbalizers) if verbalizers is not None else None}
    builtin = f"task {task.name}'s own" + (f" (the prompt was learned on {learned_on})" if not same_task else "")
    sources = {}
    for key, flag in (("template", "--template"), ("verbalizers", "--verbalizers")):
        if given[key] is not None:
            sources[key] = f"given ({flag})"
            if recorded[key] is not None and recorded[key] != given[key]:
                warn(f"{flag} {given[key]!r} differs from the {key} the prompt was trained with "
                     f"({recorded[key]!r}, in its provenance); scoring with the given one")
        elif recorded[key] is not None:
            task = task.with_options(**{key: recorded[key]})
            sources[key] = "recorded with the prompt"
        else:
            sources[key] = builtin
    definition = {"template": task.template.text, "template_from": sources["template"],
                  "verbalizers": list(task.verbalizers), "verbalizers_from": sources["verbalizers"]}
    return task, definition


def describe_definition(definition: dict) -> str:
    """One line for the terminal: which template and verbalizers were used, and where they came from."""
    return (f"template {definition['template']!r} ({definition['template_from']}), verbalizers "
            f"{definition['verbalizers']} ({definition['verbalizers_from']})")


def recorded_task(provenance: dict) -> ClassificationTask:
    """The task definition a learned prompt was trained with, without its data: the template, verbalizers and
    label names that labelling new texts needs (``LearnedPrompt.classify``, ``rlprompt-interp predict``).

    A built-in task fills in what the provenance leaves out; the label names are the recorded ones, the built-in
    task's, or the verbalizers without their spaces."""
    from .registry import get_task, list_tasks

    name = provenance.get("task") or "learned"
    builtin = get_task(name) if name in list_tasks() else None  # the definition only: no data is read
    verbalizers = provenance.get("verbalizers") or (list(builtin.verbalizers) if builtin else None)
    template = provenance.get("template") or (builtin.template.text if builtin else None)
    if not verbalizers or not template:
        raise TaskDataError(f"the learned prompt records no {'verbalizers' if not verbalizers else 'template'} of "
                            f"its task {name!r}: give the task (--task, or task= in Python)")
    label_names = provenance.get("label_names") or (
        list(builtin.label_names) if builtin and len(builtin.label_names) == len(verbalizers) else ())
    fields = tuple(slot for _, slot, _, _ in string.Formatter().parse(template) if slot not in (None, "prompt", MASK_SLOT))
    return ClassificationTask(name=name, verbalizers=tuple(verbalizers), template=Template(template, fields),
                              label_names=tuple(label_names))
