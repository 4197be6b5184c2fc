"""deephash: triplet metric learning and deep supervised hashing, one retrieval protocol, fast search."""

__version__ = "0.1.0"
