"""Interpretability metrics: faithfulness, scrutability, prompt F1, unembedding, similarity, transfer.

Each metric is a small function whose docstring gives its formula; prompt F1 and scrutability
are also ``evaluate.Metric`` subclasses instantiated locally (``PromptF1()``, ``Scrutability()``).
"""

from .faithfulness import (FaithfulnessReport, distance_differential, faithfulness, output_differential,
                           performance_differential, unembedded_prompt)
from .prompt_f1 import PromptF1, normalize_words, prompt_f1
from .scrutability import Scrutability, scrutability
from .similarity import frobenius_distance, norm_statistics, pca_2d, similarity_matrix, stochasticity
from .transfer import evaluate_transfer, matrix_correlation, transfer_matrix
from .unembed import METRICS, Unembedding, unembed, vocabulary_matrix

__all__ = [
    "FaithfulnessReport", "distance_differential", "faithfulness", "output_differential", "performance_differential",
    "unembedded_prompt", "PromptF1", "normalize_words", "prompt_f1", "Scrutability", "scrutability",
    "frobenius_distance", "norm_statistics", "pca_2d", "similarity_matrix", "stochasticity", "evaluate_transfer",
    "matrix_correlation", "transfer_matrix", "METRICS", "Unembedding", "unembed", "vocabulary_matrix",
]
