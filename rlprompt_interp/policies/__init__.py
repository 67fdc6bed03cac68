"""Policies that emit prompt tokens: a frozen LM with a small trainable head."""
