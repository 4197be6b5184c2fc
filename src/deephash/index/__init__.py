"""deephash.index."""
