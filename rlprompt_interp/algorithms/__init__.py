"""Learning algorithms: soft Q-learning (RLPrompt) and its training loop."""

from . import sql
from .sql import LOSSES, TargetUpdater, copy_update, multi_step_loss, polyak_update, single_step_loss, sql_loss
from .trainer import SQLConfig, SQLTrainer

__getattr__ = sql.__getattr__  # the deprecated MODES, with its warning

__all__ = ["LOSSES", "TargetUpdater", "copy_update", "multi_step_loss", "polyak_update", "single_step_loss",
           "sql_loss", "SQLConfig", "SQLTrainer"]
