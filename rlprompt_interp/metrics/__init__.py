"""Interpretability metrics: faithfulness, scrutability, prompt F1, unembedding."""
