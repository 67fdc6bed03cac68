"""Composable rewards that score finished prompts."""
