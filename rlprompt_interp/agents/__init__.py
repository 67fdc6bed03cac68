"""Comparison agents behind one fit(task, ...) -> LearnedPrompt interface."""
