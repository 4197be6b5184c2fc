"""deephash.evaluation."""
