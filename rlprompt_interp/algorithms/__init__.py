"""Learning algorithms: soft Q-learning (RLPrompt) and its training loop."""

from .sql import MODES, TargetUpdater, copy_update, multi_step_loss, polyak_update, single_step_loss, sql_loss
from .trainer import SQLConfig, SQLTrainer

__all__ = ["MODES", "TargetUpdater", "copy_update", "multi_step_loss", "polyak_update", "single_step_loss",
           "sql_loss", "SQLConfig", "SQLTrainer"]
