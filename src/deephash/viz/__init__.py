"""deephash.viz."""
