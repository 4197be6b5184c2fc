"""Create indexes by name and load them from files, through the index registry."""

from __future__ import annotations

import os
from typing import Any

# importing the backends registers them
from deephash.index import faiss_adapter, flat, mih, milvus  # noqa: F401
from deephash.index._format import read_container
from deephash.index.base import BinaryIndex
from deephash.index.registry import INDEXES, index_class

__all__ = ["create_index", "list_indexes", "load_index"]


def list_indexes() -> list[str]:
    """Names accepted by :func:`create_index` (``faiss`` takes ``faiss:<factory string>``,
    ``milvus`` takes ``milvus:<uri>``)."""
    return [_spelling(name) for name in INDEXES.names()]


def _spelling(name: str) -> str:
    argument = index_class(name).name_argument
    return f"{name}:<{argument}>" if argument else name


def create_index(name: str, bits: int, **options: Any) -> BinaryIndex:
    """Create an index: ``"flat"``, ``"mih"`` (options: ``num_tables``),
    ``"faiss:<factory>"`` (e.g. ``"faiss:BFlat"``, ``"faiss:BIVF1024"``; options ``nprobe``,
    ``ef_search``) or ``"milvus:<uri>"`` with a Milvus Lite file (``"milvus:data/milvus.db"``) or a
    server (``"milvus:http://host:19530"``); options ``collection``, ``index_type`` (``"BIN_FLAT"``
    or ``"BIN_IVF_FLAT"``), ``nlist``, ``nprobe``, ``exact_ties``, ``token``. A Milvus collection
    that already exists is opened with its rows, not emptied."""
    backend, colon, argument = name.partition(":")
    cls = index_class(backend) if backend in INDEXES else None
    if cls is None or bool(colon) != bool(cls.name_argument):
        raise ValueError(f"unknown index {name!r}; choose one of {list_indexes()}")
    if colon and not argument:
        raise ValueError(cls.name_argument_help)
    make = INDEXES.get(backend)
    try:
        return make(bits, argument, **options) if colon else make(bits, **options)
    except TypeError as exc:
        raise ValueError(f"bad options for index {backend!r}: {exc}") from None


def load_index(path: str | os.PathLike[str]) -> BinaryIndex:
    """Load an index written by ``index.save(path)``; a damaged or foreign file is a ValueError."""
    c = read_container(path)
    if c.backend not in INDEXES:
        raise ValueError(f"{str(path)!r}: unknown index backend {c.backend!r} in the header")
    options = index_class(c.backend)._options_from_file(c.options, str(path))
    try:
        index = INDEXES.get(c.backend)(c.bits, **options)
    except TypeError as exc:
        raise ValueError(f"{str(path)!r}: bad index options in the header ({exc})") from None
    index._restore(c, str(path))
    return index
