"""rlprompt-interp: learn discrete, readable prompts with RL and measure how interpretable they are."""

__version__ = "0.1.0"
