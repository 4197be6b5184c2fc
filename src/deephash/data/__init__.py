"""deephash.data."""
