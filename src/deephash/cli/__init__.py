"""deephash.cli."""
