"""The index registry: each backend registers its class under its name (``@INDEXES.register``),
and :func:`~deephash.index.create_index` and :func:`~deephash.index.load_index` build from it."""

from __future__ import annotations

from typing import cast

from deephash._registry import Registry
from deephash.index.base import BinaryIndex

__all__ = ["INDEXES", "index_class"]

INDEXES = Registry[BinaryIndex]("index")


def index_class(name: str) -> type[BinaryIndex]:
    """The class registered as ``name`` (a ValueError listing the names when there is none)."""
    return cast(type[BinaryIndex], INDEXES.get(name))
