"""Hamming indexes over packed binary codes: exhaustive scan, multi-index hashing, faiss and
Milvus adapters.

All share one faiss-compatible contract (:class:`BinaryIndex`: ``add``, ``search``,
``range_search``, ``ntotal``, ``save``) and one file format (:func:`load_index`); the in-memory
backends build on :class:`InMemoryIndex`, and :func:`create_index` builds any of them by name.
Search results are ``(distances int32 (nq, k), ids int64 (nq, k))`` with ties broken by the smaller
id.
"""

from deephash.index.base import BinaryIndex
from deephash.index.errors import EngineUnavailableError
from deephash.index.factory import create_index, list_indexes, load_index
from deephash.index.faiss_adapter import FaissBinaryIndex
from deephash.index.flat import HammingIndex
from deephash.index.in_memory import InMemoryIndex
from deephash.index.mih import MultiIndexHashing, default_num_tables
from deephash.index.milvus import MilvusBinaryIndex
from deephash.index.simd import kernel_target

__all__ = [
    "BinaryIndex",
    "EngineUnavailableError",
    "FaissBinaryIndex",
    "HammingIndex",
    "InMemoryIndex",
    "MilvusBinaryIndex",
    "MultiIndexHashing",
    "create_index",
    "default_num_tables",
    "kernel_target",
    "list_indexes",
    "load_index",
]
