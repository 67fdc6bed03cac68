"""Composable rewards that score finished prompts: ``TaskGapReward(task, lm) + 0.01 * Perplexity(scorer)``.

``ClassificationReward`` and ``TaskAccuracy``, older names of ``TaskGapReward``, still import, with a warning."""

from ..notices import deprecated_names
from . import classification
from .base import (FunctionReward, PromptBatch, Reward, RewardError, RewardOutput, WeightedSum, as_reward, load_function,
                   term_scores)
from .classification import TaskGapReward, gap_reward
from .perplexity import Perplexity, perplexity_scorer
from .shaping import linear_map, zscore_by_key
from .trl import TRLReward

__all__ = ["FunctionReward", "PromptBatch", "Reward", "RewardError", "RewardOutput", "WeightedSum", "as_reward",
           "load_function", "TaskGapReward", "gap_reward", "Perplexity", "perplexity_scorer", "linear_map",
           "zscore_by_key", "TRLReward", "term_scores"]

__getattr__ = deprecated_names(__name__, classification.RENAMED)
