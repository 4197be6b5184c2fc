"""The contract of every Hamming index: what ``add``, ``remove_ids``, ``search``, ``range_search``,
``ntotal`` and ``save`` mean, and the checks of their inputs.

Codes are packed ``uint8`` arrays of shape ``(n, ceil(bits / 8))`` in the faiss layout (see
:mod:`deephash.codes`); ids are distinct non-negative int64; search results are sorted by
(distance, id), ties broken by the smaller id, and padded with -1. Where the codes live is not part
of the contract: :class:`~deephash.index.in_memory.InMemoryIndex` keeps them in this process (flat,
mih, faiss), :class:`~deephash.index.milvus.MilvusBinaryIndex` in a Milvus collection (faiss's
``IndexBinary`` vs ``IndexBinaryFlat`` split).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from deephash.checks import check_positive_int
from deephash.codes import check_padding_bits, code_bytes
from deephash.index._format import Container

__all__ = ["BinaryIndex", "IdsInput", "MetadataInput"]

IdsInput = np.ndarray | Sequence[int]
MetadataInput = Mapping[str, Sequence[Any] | np.ndarray]


class BinaryIndex(ABC):
    """Common interface (faiss-compatible shapes and dtypes) of the Hamming indexes.

    A backend implements the state, ``add``, ``remove_ids``, ``reset``, ``metadata_for``,
    ``search``, ``range_search``, ``save`` and ``_restore``; the checks of their inputs are here,
    so that every backend refuses bad input with the same words.
    """

    backend: ClassVar[str] = ""
    """The name it is registered and saved under (``create_index`` and the file header)."""
    persistent: ClassVar[bool] = False
    """True when the codes live in an external store (a database such as Milvus) rather than in this
    object: ``add`` and ``remove_ids`` are durable by themselves, and ``save`` writes only a small
    file that :func:`~deephash.index.load_index` turns back into a connection to that store. False
    for the in-memory backends, whose ``save`` writes every code."""
    name_argument: ClassVar[str] = ""
    """The constructor's second positional argument that a ``create_index`` name carries after
    ``<backend>:`` (``"factory"`` in ``"faiss:BFlat"``); empty when the name is the backend alone."""
    name_argument_help: ClassVar[str] = ""
    """The error for a name that ends at ``<backend>:`` (the argument missing)."""

    def __init__(self, bits: int) -> None:
        self.bits = check_positive_int(bits, "bits")
        self.nbytes = code_bytes(self.bits)

    # ------------------------------------------------------------------ state
    @property
    @abstractmethod
    def ntotal(self) -> int:
        """Number of codes in the index."""

    @property
    @abstractmethod
    def ids(self) -> np.ndarray:
        """int64 (ntotal,): the ids of the stored codes, ascending."""

    @property
    @abstractmethod
    def codes(self) -> np.ndarray:
        """uint8 (ntotal, ceil(bits / 8)): the stored codes, in the order of :attr:`ids`."""

    @property
    @abstractmethod
    def metadata(self) -> dict[str, np.ndarray]:
        """Per-item metadata arrays (length ntotal, aligned with :attr:`ids`); empty if none."""

    @abstractmethod
    def _metadata_schema(self) -> dict[str, bool] | None:
        """The stored metadata names, each mapped to whether it holds strings; None if no metadata
        was ever given."""

    @abstractmethod
    def metadata_for(self, ids: np.ndarray | Sequence[int]) -> dict[str, np.ndarray]:
        """Metadata of the given ids (any shape, e.g. the ids returned by ``search``).

        Returns name -> array of the same shape as ``ids``. Padding ids (-1) and unknown ids are a
        ``ValueError``; filter them out first.
        """

    # ------------------------------------------------------------------ add / remove
    def train(self, codes: np.ndarray) -> None:
        """Learn whatever the backend needs before ``add`` (nothing for exact backends).

        codes: uint8 (n, ceil(bits / 8)).
        """
        self._check_codes(codes, "training codes")

    @abstractmethod
    def add(
        self, codes: np.ndarray, ids: IdsInput | None = None, metadata: MetadataInput | None = None
    ) -> None:
        """Add codes.

        codes: uint8 (n, ceil(bits / 8)). ids: int64 (n,) distinct non-negative ids not already in
        the index; default ``ntotal, ntotal + 1, ...`` (continuing after the largest id).
        metadata: optional mapping name -> sequence of length n (numbers, bools or strings), e.g.
        image paths and labels; every ``add`` must give the same names.
        """

    @abstractmethod
    def remove_ids(self, ids: np.ndarray | Sequence[int]) -> int:
        """Remove the codes (and metadata) with these ids; ids not in the index are ignored, as in
        faiss. ids: int (m,). Returns the number of codes removed."""

    @abstractmethod
    def reset(self) -> None:
        """Remove every code, id and metadata entry (settings are kept)."""

    # ------------------------------------------------------------------ search
    @abstractmethod
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """k nearest codes by Hamming distance, exact for the exact backends.

        queries: uint8 (nq, ceil(bits / 8)). Returns distances int32 (nq, k) and ids int64 (nq, k),
        each row sorted by (distance, id): ties are broken by the smaller id. When the index holds
        fewer than k codes, the missing entries are distance -1 and id -1 (faiss pads ids with -1).
        """

    @abstractmethod
    def range_search(
        self, queries: np.ndarray, radius: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All codes at Hamming distance strictly below ``radius`` (faiss's convention).

        queries: uint8 (nq, ceil(bits / 8)). Returns ``lims`` int64 (nq + 1,), ``distances`` int32
        (lims[-1],) and ``ids`` int64 (lims[-1],); the results of query i are
        ``[lims[i], lims[i + 1])``, sorted by (distance, id).
        """

    @staticmethod
    def _padded(nq: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The answer of ``search`` before it is filled: distances int32 and ids int64 (nq, k),
        all -1."""
        return np.full((nq, k), -1, dtype=np.int32), np.full((nq, k), -1, dtype=np.int64)

    @staticmethod
    def _no_range_results(nq: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The answer of ``range_search`` when nothing can be found (no query, or radius 0)."""
        return np.zeros(nq + 1, dtype=np.int64), np.zeros(0, np.int32), np.zeros(0, np.int64)

    # ------------------------------------------------------------------ persistence
    @abstractmethod
    def save(self, path: str | os.PathLike[str]) -> None:
        """Save to ``path`` atomically in the versioned, checksummed deephash index format."""

    @abstractmethod
    def _restore(self, c: Container, path: str) -> None:
        """Fill a freshly constructed index from a verified container read from ``path``."""

    def _options(self) -> dict[str, Any]:
        """Constructor options to store in the file (JSON-serialisable)."""
        return {}

    @classmethod
    def _options_from_file(cls, options: dict[str, Any], path: str) -> dict[str, Any]:
        """Constructor options as read from the index file at ``path`` (a backend whose options
        hold paths relative to the file resolves them here)."""
        return options

    # ------------------------------------------------------------------ checks
    def _check_codes(self, codes: np.ndarray, what: str) -> np.ndarray:
        """Packed codes of this index's width: uint8 (n, nbytes), contiguous (one code (nbytes,)
        becomes (1, nbytes)), with no padding bit set."""
        arr = np.asarray(codes)
        if arr.dtype != np.uint8:
            raise ValueError(
                f"{what} must be packed uint8 codes (use deephash.codes.pack_bits), got dtype "
                f"{arr.dtype}"
            )
        if arr.ndim == 1 and arr.shape[0] == self.nbytes:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != self.nbytes:
            raise ValueError(
                f"{what} must have shape (n, {self.nbytes}) for {self.bits}-bit codes, got "
                f"{arr.shape}"
            )
        check_padding_bits(arr, self.bits, what)
        return np.ascontiguousarray(arr)

    def _check_queries(self, queries: np.ndarray, ntotal: int | None = None) -> np.ndarray:
        """Queries must fit the codes, and the index (``ntotal`` codes, default read) be non-empty."""
        if (self.ntotal if ntotal is None else ntotal) == 0:
            raise ValueError(
                f"the {self.backend} index is empty: call add(codes) before search/range_search"
            )
        return self._check_codes(queries, "queries")

    @staticmethod
    def _check_k(k: int) -> int:
        return check_positive_int(k, "k")

    @staticmethod
    def _check_radius(radius: int) -> int:
        if not isinstance(radius, (int, np.integer)) or isinstance(radius, bool) or radius < 0:
            raise ValueError(f"radius must be a non-negative integer, got {radius!r}")
        return int(radius)

    @staticmethod
    def _check_ids(ids: np.ndarray | Sequence[int] | None, n: int, start: int) -> np.ndarray:
        """ids for ``add``: int64 (n,), validated; default ``start, start + 1, ...``."""
        if ids is None:
            return np.arange(start, start + n, dtype=np.int64)
        new_ids = np.asarray(ids)
        if new_ids.ndim != 1 or new_ids.shape[0] != n:
            raise ValueError(f"ids must have shape ({n},) to match the codes, got {new_ids.shape}")
        if n and not np.issubdtype(new_ids.dtype, np.integer):
            raise ValueError(f"ids must be integers, got dtype {new_ids.dtype}")
        new_ids = new_ids.astype(np.int64)
        if n and new_ids.min() < 0:
            raise ValueError("ids must be >= 0 (-1 marks a missing result in search output)")
        return new_ids

    @staticmethod
    def _check_remove_ids(ids: np.ndarray | Sequence[int]) -> np.ndarray:
        """ids for ``remove_ids``: int64 (m,)."""
        arr = np.asarray(ids)
        if arr.ndim != 1:
            raise ValueError(f"ids must be a 1-D array (m,), got shape {arr.shape}")
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"ids must be integers, got dtype {arr.dtype}")
        return arr.astype(np.int64)

    def _check_metadata(
        self, metadata: MetadataInput | None, n: int
    ) -> dict[str, np.ndarray] | None:
        """metadata for an ``add`` of n codes: name -> array (n,), the names and kinds (string or
        number) of the stored ones; None when none is given (allowed only if none is stored)."""
        schema = self._metadata_schema()
        if metadata is None:
            if schema is not None and n:
                raise ValueError(
                    f"this index stores metadata {sorted(schema)}; pass metadata= to add"
                )
            return None
        if schema is None and self.ntotal:
            raise ValueError("metadata can only be given if it was given from the first add on")
        if schema is not None and set(metadata) != set(schema):
            raise ValueError(
                f"metadata names {sorted(metadata)} differ from the index's {sorted(schema)}"
            )
        return {key: _metadata_column(key, values, n, schema) for key, values in metadata.items()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(bits={self.bits}, ntotal={self.ntotal})"


def _metadata_column(
    key: object, values: Sequence[Any] | np.ndarray, n: int, schema: dict[str, bool] | None
) -> np.ndarray:
    """One metadata column as an array (n,) of numbers, bools or strings; its kind must match the
    stored column's."""
    if not isinstance(key, str):
        raise ValueError(f"metadata names must be strings, got {key!r}")
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"metadata {key!r} must have length {n}, got shape {arr.shape}")
    if arr.dtype.kind not in "biufU":
        raise ValueError(
            f"metadata {key!r} must hold numbers, bools or strings, got dtype {arr.dtype}"
        )
    if schema is not None and (arr.dtype.kind == "U") != schema[key]:
        raise ValueError(f"metadata {key!r} mixes strings and numbers across add calls")
    return arr
