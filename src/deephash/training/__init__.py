"""deephash.training."""
