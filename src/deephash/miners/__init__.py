"""deephash.miners."""
