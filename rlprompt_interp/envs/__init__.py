"""Gymnasium environments that build prompts token by token."""
