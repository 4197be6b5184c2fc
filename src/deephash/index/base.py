"""Base class of every Hamming index: input checks, ids, metadata and persistence.

Codes are packed ``uint8`` arrays of shape ``(n, ceil(bits / 8))`` in the faiss layout (see
:mod:`deephash.codes`). The base class keeps the database sorted by id, so that every backend can
break distance ties by scan position and still return the smaller id first. A backend writes
``_search`` and ``_range_search`` over positions; the base maps positions to ids.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from deephash.codes import check_padding_bits, code_bytes
from deephash.index._format import Container, write_container

__all__ = ["BinaryIndex"]

MetadataInput = Mapping[str, Sequence[Any] | np.ndarray]


class BinaryIndex:
    """Common interface (faiss-compatible shapes and dtypes) of the Hamming indexes.

    Subclasses implement ``_search(queries, k)`` and ``_range_search(queries, radius)`` on positions
    of the id-sorted storage; they may override ``_on_change`` to drop derived structures.
    """

    backend: ClassVar[str] = ""
    persistent: ClassVar[bool] = False
    """True when the codes live in an external store (a database such as Milvus) rather than in this
    object: ``add`` and ``remove_ids`` are durable by themselves, and ``save`` writes only a small
    file that :func:`~deephash.index.load_index` turns back into a connection to that store. False
    for the in-memory backends, whose ``save`` writes every code."""

    def __init__(self, bits: int) -> None:
        if not isinstance(bits, (int, np.integer)) or isinstance(bits, bool) or bits <= 0:
            raise ValueError(f"bits must be a positive integer, got {bits!r}")
        self.bits = int(bits)
        self.nbytes = code_bytes(self.bits)
        self.codes_ = np.zeros((0, self.nbytes), dtype=np.uint8)
        # ids: an explicit int64 array, or (the common case of consecutive ids) just the first id
        # (``_ids is None``), so that an index of n codes with ids start..start+n-1 stores no ids.
        self._ids: np.ndarray | None = None
        self._id_start = 0
        self.metadata_: dict[str, np.ndarray] | None = None

    # ------------------------------------------------------------------ state
    @property
    def ntotal(self) -> int:
        """Number of codes in the index."""
        return int(self.codes_.shape[0])

    @property
    def ids_(self) -> np.ndarray:
        """int64 (ntotal,): the stored ids, ascending (built on the fly when they are consecutive)."""
        if self._ids is None:
            return np.arange(self._id_start, self._id_start + self.ntotal, dtype=np.int64)
        return self._ids

    @ids_.setter
    def ids_(self, ids: np.ndarray) -> None:
        # ids are ascending and distinct, so they are consecutive iff last - first == n - 1
        ids = np.asarray(ids, dtype=np.int64)
        if ids.shape[0] == 0 or int(ids[-1]) - int(ids[0]) == ids.shape[0] - 1:
            self._ids, self._id_start = None, int(ids[0]) if ids.shape[0] else 0
        else:
            self._ids = ids

    def _ids_at(self, positions: np.ndarray) -> np.ndarray:
        """int64, the shape of ``positions``: the ids stored at these positions."""
        if self._ids is None:
            return np.asarray(positions, dtype=np.int64) + self._id_start
        return self._ids[positions]

    def _positions_of(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For int64 ids (k,): their positions (k,) and whether each is stored (k,) bool."""
        n = self.ntotal
        if self._ids is None:
            pos = ids - self._id_start
            ok = (pos >= 0) & (pos < n)
            return np.where(ok, pos, 0), ok
        # explicit ids are never empty (an empty index keeps _ids None), so n >= 1 here
        pos = np.minimum(np.searchsorted(self._ids, ids), n - 1)
        return pos, self._ids[pos] == ids

    @property
    def ids(self) -> np.ndarray:
        """int64 (ntotal,): the ids of the stored codes, ascending."""
        return self.ids_

    @property
    def codes(self) -> np.ndarray:
        """uint8 (ntotal, ceil(bits / 8)): the stored codes, in the order of :attr:`ids`."""
        return self.codes_

    @property
    def metadata(self) -> dict[str, np.ndarray]:
        """Per-item metadata arrays (length ntotal, aligned with :attr:`ids`); empty if none."""
        return dict(self.metadata_) if self.metadata_ is not None else {}

    def reset(self) -> None:
        """Remove every code, id and metadata entry (settings are kept)."""
        self.codes_ = np.zeros((0, self.nbytes), dtype=np.uint8)
        self._ids, self._id_start = None, 0
        self.metadata_ = None
        self._on_change(appended_from=None)

    # ------------------------------------------------------------------ checks
    def _check_codes(self, codes: np.ndarray, what: str) -> np.ndarray:
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
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k <= 0:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        return int(k)

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

    # ------------------------------------------------------------------ add
    def train(self, codes: np.ndarray) -> None:
        """Learn whatever the backend needs before ``add`` (nothing for exact backends).

        codes: uint8 (n, ceil(bits / 8)).
        """
        self._check_codes(codes, "training codes")

    def add(
        self,
        codes: np.ndarray,
        ids: np.ndarray | Sequence[int] | None = None,
        metadata: MetadataInput | None = None,
    ) -> None:
        """Add codes.

        codes: uint8 (n, ceil(bits / 8)). ids: int64 (n,) distinct non-negative ids not already in
        the index; default ``ntotal, ntotal + 1, ...`` (continuing after the largest id).
        metadata: optional mapping name -> sequence of length n (numbers, bools or strings), e.g.
        image paths and labels; every ``add`` must give the same names.
        """
        codes = self._check_codes(codes, "codes")
        n = codes.shape[0]
        start = int(self._ids_at(np.array([self.ntotal - 1]))[0]) + 1 if self.ntotal else 0
        # default ids after consecutive ones stay consecutive: no array is built or stored
        lazy = ids is None and self._ids is None
        new_ids = None if lazy else self._check_ids(ids, n, start)
        new_meta = self._check_metadata(metadata, n)
        if n == 0:
            return
        appended_from: int | None = self.ntotal
        in_order = new_ids is None or (
            bool(np.all(np.diff(new_ids) > 0)) and (self.ntotal == 0 or new_ids[0] >= start)
        )
        consecutive = new_ids is None or (
            in_order
            and int(new_ids[-1]) - int(new_ids[0]) == n - 1
            and (self.ntotal == 0 or int(new_ids[0]) == start)
        )
        codes_all = np.concatenate([self.codes_, codes])
        ids_all: np.ndarray | None = None  # None: still consecutive, nothing to store
        first_id = self._id_start
        if self.ntotal == 0:
            first_id = start if new_ids is None else int(new_ids[0])
        if self._ids is not None or not consecutive:
            assert new_ids is not None
            ids_all = np.concatenate([self.ids_, new_ids])
        meta_all = (
            None
            if new_meta is None
            else {
                k: np.concatenate([self.metadata_[k], v]) if self.metadata_ else v
                for k, v in new_meta.items()
            }
        )
        if not in_order:
            assert ids_all is not None
            order = np.argsort(ids_all, kind="stable")
            ids_all = ids_all[order]
            dup = ids_all[1:] == ids_all[:-1]
            if np.any(dup):
                raise ValueError(
                    f"id {int(ids_all[1:][dup][0])} is given more than once; ids must be distinct"
                )
            codes_all = codes_all[order]
            if meta_all is not None:
                meta_all = {k: v[order] for k, v in meta_all.items()}
            appended_from = None
        self.codes_, self.metadata_ = codes_all, meta_all
        if ids_all is None:
            self._ids, self._id_start = None, first_id
        else:
            self.ids_ = ids_all
        self._on_change(appended_from=appended_from)

    def remove_ids(self, ids: np.ndarray | Sequence[int]) -> int:
        """Remove the codes (and metadata) with these ids; ids not in the index are ignored, as in
        faiss. ids: int (m,). Returns the number of codes removed."""
        pos, ok = self._positions_of(self._check_remove_ids(ids))
        gone = np.zeros(self.ntotal, dtype=bool)
        gone[pos[ok]] = True
        removed = int(gone.sum())
        if removed:
            keep = ~gone
            ids_kept = self.ids_[keep]
            self.codes_ = self.codes_[keep]
            self.ids_ = ids_kept
            if self.metadata_ is not None:
                self.metadata_ = {k: v[keep] for k, v in self.metadata_.items()}
            self._on_change(appended_from=None)
        return removed

    def _metadata_schema(self) -> dict[str, bool] | None:
        """The stored metadata names, each mapped to whether it holds strings; None if no metadata
        was ever given. A backend that keeps its metadata elsewhere overrides this."""
        if self.metadata_ is None:
            return None
        return {k: v.dtype.kind == "U" for k, v in self.metadata_.items()}

    def _check_metadata(
        self, metadata: MetadataInput | None, n: int
    ) -> dict[str, np.ndarray] | None:
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
        out: dict[str, np.ndarray] = {}
        for key, values in metadata.items():
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
            out[key] = arr
        return out

    def metadata_for(self, ids: np.ndarray | Sequence[int]) -> dict[str, np.ndarray]:
        """Metadata of the given ids (any shape, e.g. the ids returned by ``search``).

        Returns name -> array of the same shape as ``ids``. Padding ids (-1) and unknown ids are a
        ``ValueError``; filter them out first.
        """
        if self.metadata_ is None:
            raise ValueError("this index has no metadata (pass metadata= to add)")
        q = np.asarray(ids, dtype=np.int64)
        pos, ok = self._positions_of(q.ravel())
        if not np.all(ok):
            raise ValueError(f"id {int(q.ravel()[~ok][0])} is not in the index")
        return {k: v[pos].reshape(q.shape) for k, v in self.metadata_.items()}

    # ------------------------------------------------------------------ search
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """k nearest codes by Hamming distance, exact for the exact backends.

        queries: uint8 (nq, ceil(bits / 8)). Returns distances int32 (nq, k) and ids int64 (nq, k),
        each row sorted by (distance, id): ties are broken by the smaller id. When the index holds
        fewer than k codes, the missing entries are distance -1 and id -1 (faiss pads ids with -1).
        """
        q = self._check_queries(queries)
        k = self._check_k(k)
        kk = min(k, self.ntotal)
        dist = np.full((q.shape[0], k), -1, dtype=np.int32)
        ids = np.full((q.shape[0], k), -1, dtype=np.int64)
        if q.shape[0]:
            d, p = self._search(q, kk)
            valid = p >= 0
            dist[:, :kk] = np.where(valid, d, -1)
            ids[:, :kk] = np.where(valid, self._ids_at(np.where(valid, p, 0)), -1)
        return dist, ids

    def range_search(
        self, queries: np.ndarray, radius: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All codes at Hamming distance strictly below ``radius`` (faiss's convention).

        queries: uint8 (nq, ceil(bits / 8)). Returns ``lims`` int64 (nq + 1,), ``distances`` int32
        (lims[-1],) and ``ids`` int64 (lims[-1],); the results of query i are
        ``[lims[i], lims[i + 1])``, sorted by (distance, id).
        """
        q = self._check_queries(queries)
        r = min(self._check_radius(radius), self.bits + 1)
        if q.shape[0] == 0 or r == 0:
            return (
                np.zeros(q.shape[0] + 1, dtype=np.int64),
                np.zeros(0, np.int32),
                np.zeros(0, np.int64),
            )
        lims, d, p = self._range_search(q, r)
        return lims.astype(np.int64), d.astype(np.int32), self._ids_at(p)

    # ------------------------------------------------------------------ backend hooks
    def _on_change(self, appended_from: int | None) -> None:
        """Storage changed: rows ``appended_from:`` were appended, or (None) everything moved."""

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _range_search(
        self, queries: np.ndarray, radius: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _options(self) -> dict[str, Any]:
        """Constructor options to store in the file (JSON-serialisable)."""
        return {}

    @classmethod
    def _options_from_file(cls, options: dict[str, Any], path: str) -> dict[str, Any]:
        """Constructor options as read from the index file at ``path`` (a backend whose options
        hold paths relative to the file resolves them here)."""
        return options

    def _extra_sections(self) -> dict[str, np.ndarray]:
        return {}

    def _load_extra(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore backend state from the saved sections (default: rebuild from the codes)."""
        self._on_change(appended_from=None)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Save to ``path`` atomically in the versioned, checksummed deephash index format."""
        arrays: dict[str, np.ndarray] = {"ids": self.ids_, "codes": self.codes_}
        json_sections: dict[str, Any] = {}
        keys: list[str] = []
        for key, arr in (self.metadata_ or {}).items():
            keys.append(key)
            if arr.dtype.kind == "U":
                json_sections[f"meta/{key}"] = arr.tolist()
            else:
                arrays[f"meta/{key}"] = arr
        arrays.update({f"backend/{k}": v for k, v in self._extra_sections().items()})
        write_container(
            path,
            Container(
                backend=self.backend,
                bits=self.bits,
                ntotal=self.ntotal,
                options=self._options(),
                arrays=arrays,
                json_sections=json_sections,
                metadata_keys=keys,
            ),
        )

    def _restore(self, c: Container, path: str) -> None:
        """Fill a freshly constructed index from a verified container."""
        ids, codes = c.arrays.get("ids"), c.arrays.get("codes")
        if ids is None or codes is None:
            raise ValueError(f"{path!r} is not a valid deephash index file: ids or codes missing")
        if ids.shape != (c.ntotal,) or codes.shape != (c.ntotal, self.nbytes):
            raise ValueError(
                f"{path!r} is not a valid deephash index file: ids {ids.shape} / codes "
                f"{codes.shape} do not match {c.ntotal} codes of {c.bits} bits"
            )
        if ids.dtype != np.int64 or codes.dtype != np.uint8 or np.any(np.diff(ids) <= 0):
            raise ValueError(f"{path!r} is not a valid deephash index file: bad ids or codes")
        self.codes_ = codes
        self.ids_ = ids
        if c.metadata_keys:
            meta: dict[str, np.ndarray] = {}
            for key in c.metadata_keys:
                if f"meta/{key}" in c.arrays:
                    meta[key] = c.arrays[f"meta/{key}"]
                else:
                    meta[key] = np.asarray(c.json_sections.get(f"meta/{key}", []), dtype=str)
                if meta[key].shape != (c.ntotal,):
                    raise ValueError(
                        f"{path!r} is not a valid deephash index file: metadata {key!r} has "
                        f"shape {meta[key].shape}, expected ({c.ntotal},)"
                    )
            self.metadata_ = meta
        extra = {k[len("backend/") :]: v for k, v in c.arrays.items() if k.startswith("backend/")}
        self._load_extra(extra)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(bits={self.bits}, ntotal={self.ntotal})"
