"""Tasks: examples, a template and verbalizers, loaded from the hub or local files."""

from .data import HubSource, TaskDataError
from .registry import RLPROMPT_MASKED, RLPROMPT_VERBALIZERS, UnknownTaskError, get_task, list_tasks, task_from_json
from .task import ClassificationTask, VerbalizerError, task_from_files
from .templates import Template, TemplateError

__all__ = [
    "ClassificationTask", "HubSource", "TaskDataError", "Template", "TemplateError", "UnknownTaskError",
    "RLPROMPT_MASKED", "RLPROMPT_VERBALIZERS", "VerbalizerError", "get_task", "list_tasks", "task_from_files", "task_from_json",
]
