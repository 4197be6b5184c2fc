"""Create indexes by name and load them from files."""

from __future__ import annotations

import os
from typing import Any

from deephash.index._format import read_container
from deephash.index.base import BinaryIndex
from deephash.index.faiss_adapter import FaissBinaryIndex
from deephash.index.flat import HammingIndex
from deephash.index.mih import MultiIndexHashing
from deephash.index.milvus import MilvusBinaryIndex

__all__ = ["create_index", "list_indexes", "load_index"]

_BACKENDS: dict[str, type[BinaryIndex]] = {
    "flat": HammingIndex,
    "mih": MultiIndexHashing,
    "faiss": FaissBinaryIndex,
    "milvus": MilvusBinaryIndex,
}


def list_indexes() -> list[str]:
    """Names accepted by :func:`create_index` (``faiss`` takes ``faiss:<factory string>``,
    ``milvus`` takes ``milvus:<uri>``)."""
    return ["flat", "mih", "faiss:<factory>", "milvus:<uri>"]


def create_index(name: str, bits: int, **options: Any) -> BinaryIndex:
    """Create an index: ``"flat"``, ``"mih"`` (options: ``num_tables``),
    ``"faiss:<factory>"`` (e.g. ``"faiss:BFlat"``, ``"faiss:BIVF1024"``; options ``nprobe``,
    ``ef_search``) or ``"milvus:<uri>"`` with a Milvus Lite file (``"milvus:data/milvus.db"``) or a
    server (``"milvus:http://host:19530"``); options ``collection``, ``index_type`` (``"BIN_FLAT"``
    or ``"BIN_IVF_FLAT"``), ``nlist``, ``nprobe``, ``exact_ties``, ``token``. A Milvus collection
    that already exists is opened with its rows, not emptied."""
    if name.startswith("milvus:"):
        uri = name[len("milvus:") :]
        if not uri:
            raise ValueError(
                "give a Milvus URI after 'milvus:', e.g. 'milvus:data/milvus.db' (Milvus Lite) or "
                "'milvus:http://localhost:19530' (a server)"
            )
        try:
            return MilvusBinaryIndex(bits, uri, **options)
        except TypeError as exc:
            raise ValueError(f"bad options for index 'milvus': {exc}") from None
    if name.startswith("faiss:"):
        factory = name[len("faiss:") :]
        if not factory:
            raise ValueError("give a faiss factory string after 'faiss:', e.g. 'faiss:BFlat'")
        return FaissBinaryIndex(bits, factory, **options)
    if name not in ("flat", "mih"):
        raise ValueError(f"unknown index {name!r}; choose one of {list_indexes()}")
    try:
        return _BACKENDS[name](bits, **options)
    except TypeError as exc:
        raise ValueError(f"bad options for index {name!r}: {exc}") from None


def load_index(path: str | os.PathLike[str]) -> BinaryIndex:
    """Load an index written by ``index.save(path)``; a damaged or foreign file is a ValueError."""
    c = read_container(path)
    cls = _BACKENDS.get(c.backend)
    if cls is None:
        raise ValueError(f"{str(path)!r}: unknown index backend {c.backend!r} in the header")
    try:
        index = cls(c.bits, **cls._options_from_file(c.options, str(path)))
    except TypeError as exc:
        raise ValueError(f"{str(path)!r}: bad index options in the header ({exc})") from None
    index._restore(c, str(path))
    return index
