"""deephash.metrics."""
