"""Composable rewards that score finished prompts: ``TaskGapReward(task, lm) + 0.01 * Perplexity(scorer)``.

``ClassificationReward`` and ``TaskAccuracy`` are older names of ``TaskGapReward``."""

from .base import (FunctionReward, PromptBatch, Reward, RewardError, RewardOutput, WeightedSum, as_reward, load_function,
                   term_scores)
from .classification import ClassificationReward, TaskAccuracy, TaskGapReward, gap_reward
from .perplexity import Perplexity, perplexity_scorer
from .shaping import linear_map, zscore_by_key
from .trl import TRLReward

__all__ = ["FunctionReward", "PromptBatch", "Reward", "RewardError", "RewardOutput", "WeightedSum", "as_reward",
           "load_function", "TaskGapReward", "ClassificationReward", "TaskAccuracy", "gap_reward", "Perplexity",
           "perplexity_scorer", "linear_map", "zscore_by_key", "TRLReward", "term_scores"]
