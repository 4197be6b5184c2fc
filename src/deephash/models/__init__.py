"""deephash.models."""
