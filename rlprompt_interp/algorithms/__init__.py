"""Training algorithms (soft Q-learning)."""
