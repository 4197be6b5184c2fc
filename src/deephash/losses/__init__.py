"""deephash.losses."""
