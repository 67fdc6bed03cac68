"""The error the metrics raise for inputs they cannot measure (the CLI prints it without a traceback)."""


class MetricInputError(ValueError):
    """Inputs a metric cannot work on (shapes, metric names, empty prompts); the message says what to pass."""
