"""The Milvus backend's index: :class:`MilvusBinaryIndex`, the deephash index contract over a
Milvus collection (see :mod:`deephash.index.milvus` for what it guarantees)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deephash.checks import check_positive_int
from deephash.codes import code_bytes
from deephash.index._format import Container, write_container
from deephash.index.base import BinaryIndex, IdsInput, MetadataInput
from deephash.index.milvus import bands, rows
from deephash.index.milvus.client import (
    CONSISTENCY_LEVELS,
    Connection,
    import_pymilvus,
    is_server_uri,
)
from deephash.index.milvus.schema import (
    INDEX_TYPES,
    check_collection_name,
    metadata_columns,
    open_or_create,
)
from deephash.index.registry import INDEXES

__all__ = ["MilvusBinaryIndex"]


@INDEXES.register("milvus")
class MilvusBinaryIndex(BinaryIndex):
    """A Milvus collection of binary codes behind the deephash index API.

    bits: code length, a multiple of 8 (Milvus stores whole bytes). uri: a Milvus Lite file
    (``path/to/file.db``; its folder is created) or a server address (``http://host:19530``).
    collection: collection name (letters, digits, ``_``); an existing one is opened, a missing one
    created. index_type: ``"BIN_FLAT"`` (exact) or ``"BIN_IVF_FLAT"`` (approximate, server only);
    default: the existing collection's, else ``BIN_FLAT``. nlist: IVF cells (at creation). nprobe:
    IVF cells searched per query. timeout: seconds a request may take (deadline and retries).
    consistency: what a request waits for (``"Session"``: this process's own writes; ``"Strong"``:
    every write; see :mod:`deephash.index.milvus`).
    exact_ties: break ties at the k-th distance by the smaller id as
    the other backends do (one extra range request per distinct cut distance); default True for
    ``BIN_FLAT``, False for ``BIN_IVF_FLAT``. token: server credentials (``"user:password"`` or an
    API key); default ``$MILVUS_TOKEN``; never written to a saved file.
    """

    backend = "milvus"
    persistent = True
    name_argument = "uri"
    name_argument_help = (
        "give a Milvus URI after 'milvus:', e.g. 'milvus:data/milvus.db' (Milvus Lite) or "
        "'milvus:http://localhost:19530' (a server)"
    )

    def __init__(
        self,
        bits: int,
        uri: str,
        collection: str = "deephash",
        *,
        index_type: str | None = None,
        nlist: int = 1024,
        nprobe: int = 16,
        exact_ties: bool | None = None,
        token: str | None = None,
        timeout: float = 10.0,
        consistency: str = "Session",
    ) -> None:
        super().__init__(bits)
        _check_options(self.bits, uri, collection, index_type, nlist, nprobe, timeout, consistency)
        self.server = is_server_uri(uri)
        self.uri = uri if self.server else _lite_path(uri)
        self.collection = collection
        self.nlist = int(nlist)
        self.nprobe = int(nprobe)
        self._schema: dict[str, bool] | None = None
        self._conn = Connection(
            import_pymilvus(),
            self.uri,
            collection,
            token=os.environ.get("MILVUS_TOKEN", "") if token is None else token,
            timeout=float(timeout),
            consistency=consistency,
        )
        self.index_type = open_or_create(self._conn, self.bits, index_type, self.nlist)
        self.exact_ties = self.index_type == "BIN_FLAT" if exact_ties is None else bool(exact_ties)
        self._exact_ties_option = exact_ties

    @property
    def timeout(self) -> float:
        """Seconds a request may take (deadline and retries)."""
        return self._conn.timeout

    @property
    def consistency(self) -> str:
        """The consistency level of reads (see :mod:`deephash.index.milvus`)."""
        return self._conn.consistency

    def close(self) -> None:
        """Close the connection (a Milvus Lite server keeps running until the process exits)."""
        self._conn.close()

    # ------------------------------------------------------------------ state
    def _count(self) -> int:
        return rows.count(self._conn)

    @property
    def ntotal(self) -> int:
        """Number of codes in the collection (a count request)."""
        return self._count()

    @property
    def ids(self) -> np.ndarray:
        """int64 (ntotal,): the stored ids, ascending (reads every id from Milvus)."""
        return rows.scan(self._conn, [])[0]

    @property
    def codes(self) -> np.ndarray:
        """uint8 (ntotal, bits / 8): the stored codes in the order of :attr:`ids` (reads them all)."""
        _, found = rows.scan(self._conn, ["code"])
        out = np.zeros((len(found), self.nbytes), dtype=np.uint8)
        for i, r in enumerate(found):
            v = r["code"]
            out[i] = np.frombuffer(v[0] if isinstance(v, list) else v, dtype=np.uint8)
        return out

    @property
    def metadata(self) -> dict[str, np.ndarray]:
        """Per-item metadata arrays aligned with :attr:`ids` (reads them all); empty if none."""
        schema = self._metadata_schema()
        if schema is None:
            return {}
        _, found = rows.scan(self._conn, ["meta"])
        return metadata_columns(schema, [r["meta"] for r in found])

    def _metadata_schema(self) -> dict[str, bool] | None:
        if self._schema is None:  # the names are fixed by the first add that stored any
            found = rows.query(self._conn, "", ["meta"], limit=1)
            meta = found[0]["meta"] if found else None
            if meta:
                self._schema = {k: isinstance(v, str) for k, v in meta.items()}
        return self._schema

    def metadata_for(self, ids: np.ndarray | Sequence[int]) -> dict[str, np.ndarray]:
        """Metadata of the given ids (any shape); unknown ids (and -1) are a ``ValueError``.

        Returns name -> array of the same shape as ``ids``; numbers come back as int64/float64,
        as JSON stores them.
        """
        schema = self._metadata_schema()
        if schema is None:
            raise ValueError("this index has no metadata (pass metadata= to add)")
        q = np.asarray(ids, dtype=np.int64)
        flat = q.ravel()
        found = {
            int(r["id"]): r["meta"] for r in rows.rows_of(self._conn, np.unique(flat), ["meta"])
        }
        missing = [int(i) for i in flat if int(i) not in found]
        if missing:
            raise ValueError(f"id {missing[0]} is not in the index")
        cols = metadata_columns(schema, [found[int(i)] for i in flat])
        return {k: v.reshape(q.shape) for k, v in cols.items()}

    # ------------------------------------------------------------------ add / remove
    def add(
        self, codes: np.ndarray, ids: IdsInput | None = None, metadata: MetadataInput | None = None
    ) -> None:
        """Insert codes into the collection (durable once it returns).

        codes: uint8 (n, bits / 8). ids: int64 (n,) distinct non-negative ids not already stored;
        default: continuing after the largest stored id. metadata: optional mapping name ->
        sequence of length n (numbers, bools or strings), stored in the JSON field ``meta``;
        every ``add`` must give the same names.
        """
        codes = self._check_codes(codes, "codes")
        n = codes.shape[0]
        new_ids = self._check_ids(ids, n, 0 if ids is not None else rows.max_id(self._conn) + 1)
        new_meta = self._check_metadata(metadata, n)
        if n == 0:
            return
        self._check_new_ids(new_ids)
        cols = {k: v.tolist() for k, v in (new_meta or {}).items()}
        rows.write_rows(
            self._conn,
            [
                {
                    "id": int(new_ids[i]),
                    "code": codes[i].tobytes(),
                    "meta": {k: v[i] for k, v in cols.items()},
                }
                for i in range(n)
            ],
        )
        if new_meta is not None and self._schema is None:
            self._schema = {k: v.dtype.kind == "U" for k, v in new_meta.items()}

    def _check_new_ids(self, new_ids: np.ndarray) -> None:
        """ids int64 (n,) must be distinct and not stored yet (a read before the write)."""
        uniq, counts = np.unique(new_ids, return_counts=True)
        if np.any(counts > 1):
            raise ValueError(
                f"id {int(uniq[counts > 1][0])} is given more than once; ids must be distinct"
            )
        stored = rows.rows_of(self._conn, new_ids, [])
        if stored:
            raise ValueError(
                f"id {int(stored[0]['id'])} is given more than once: it is already in {self!r}; "
                "ids must be distinct (remove_ids it first to replace it)"
            )

    def insert(self, codes: np.ndarray, ids: np.ndarray, *, replace: bool = False) -> None:
        """Write rows whose ids the caller knows to be new, without reading first (no duplicate
        check, no metadata): for a writer that keeps the set of ids itself, as a collection does.

        codes: uint8 (n, bits / 8). ids: int64 (n,), distinct. ``replace``: upsert instead of
        insert, for a retry after a failure (an insert whose answer was lost may have been
        applied, and Milvus would store a second row with the same id; an upsert replaces it).
        """
        codes = self._check_codes(codes, "codes")
        new_ids = self._check_ids(ids, codes.shape[0], 0)
        new_rows = [
            {"id": int(i), "code": c.tobytes(), "meta": {}} for i, c in zip(new_ids.tolist(), codes)
        ]
        rows.write_rows(self._conn, new_rows, upsert=replace, retry=replace)

    def delete(self, ids: np.ndarray | Sequence[int]) -> None:
        """Delete these ids without reading first (ids not stored are ignored); idempotent."""
        rows.delete_ids(self._conn, np.unique(self._check_remove_ids(ids)))

    def flush(self) -> None:
        """Seal what Milvus holds in growing segments so it is searched through the built index:
        a growing segment is scanned by brute force on every search (measured on the local 2.3.5
        server, 60,000 64-bit codes: ~22 ms of server CPU per query growing, ~1.5 ms sealed)."""
        self._conn.request(lambda c: c.flush(self._conn.collection, timeout=self._conn.timeout))

    def stored(self, ids: np.ndarray | Sequence[int]) -> np.ndarray:
        """int64: those of ``ids`` that a read at this index's consistency level sees stored."""
        q = np.unique(np.asarray(ids, dtype=np.int64))
        return np.sort(
            np.asarray([r["id"] for r in rows.rows_of(self._conn, q, [])], dtype=np.int64)
        )

    def remove_ids(self, ids: np.ndarray | Sequence[int]) -> int:
        """Delete the rows with these ids; ids not stored are ignored, as in faiss.

        ids: int (m,). Returns the number of rows removed (counted before the delete: Milvus's own
        delete count is the number of ids asked for).
        """
        wanted = np.unique(self._check_remove_ids(ids))
        stored = np.asarray([r["id"] for r in rows.rows_of(self._conn, wanted, [])], dtype=np.int64)
        rows.delete_ids(self._conn, stored)
        return int(stored.shape[0])

    def reset(self) -> None:
        """Delete every row of the collection (it and its settings stay)."""
        rows.delete_all(self._conn)
        self._schema = None

    # ------------------------------------------------------------------ search
    def _searcher(self) -> bands.Searcher:
        return bands.Searcher(self._conn, self.index_type, self.nprobe)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """k nearest codes by Hamming distance (exact for BIN_FLAT, ties by the smaller id when
        ``exact_ties``; see :mod:`deephash.index.milvus`).

        queries: uint8 (nq, bits / 8). Returns distances int32 (nq, k) and ids int64 (nq, k), each
        row sorted by (distance, id), padded with -1 when the collection holds fewer than k codes.
        One search request (k + 1 rows with ``exact_ties``); a second one, for the tied distance
        only, when the k-th and (k+1)-th rows are at the same distance. No count request: an
        empty answer to every query is checked with one.
        """
        q = self._check_codes(queries, "queries")
        k = self._check_k(k)
        dist, ids = self._padded(q.shape[0], k)
        if q.shape[0] == 0:
            return dist, ids
        qb, searcher = [row.tobytes() for row in q], self._searcher()
        limit = bands.request_limit(k, self.exact_ties)
        found = bands.hits(searcher, qb, limit, {})
        if all(d.shape[0] == 0 for d, _ in found) and self._count() == 0:
            self._check_queries(q, 0)  # raises: the index is empty
        bands.complete_ties(searcher, qb, found, k, limit, self.exact_ties, self.bits)
        for r, (d, i) in enumerate(found):
            dist[r, : d.shape[0]] = d[:k]
            ids[r, : i.shape[0]] = i[:k]
        return dist, ids

    def range_search(
        self, queries: np.ndarray, radius: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All codes at Hamming distance strictly below ``radius`` (faiss's convention), complete
        for BIN_FLAT however many there are.

        queries: uint8 (nq, bits / 8). Returns ``lims`` int64 (nq + 1,), ``distances`` int32
        (lims[-1],) and ``ids`` int64 (lims[-1],); query i owns ``[lims[i], lims[i + 1])``, sorted
        by (distance, id).
        """
        q = self._check_queries(queries)
        r = min(self._check_radius(radius), self.bits + 1)
        if q.shape[0] == 0 or r == 0:
            return self._no_range_results(q.shape[0])
        found = bands.band(self._searcher(), [row.tobytes() for row in q], 0, r)
        lims = np.zeros(q.shape[0] + 1, dtype=np.int64)
        np.cumsum([d.shape[0] for d, _ in found], out=lims[1:])
        return (
            lims,
            np.concatenate([d for d, _ in found]).astype(np.int32),
            np.concatenate([i for _, i in found]).astype(np.int64),
        )

    # ------------------------------------------------------------------ persistence
    def _options(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "collection": self.collection,
            "index_type": self.index_type,
            "nlist": self.nlist,
            "nprobe": self.nprobe,
            "exact_ties": self._exact_ties_option,
            "timeout": self.timeout,
            "consistency": self.consistency,
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write a small deephash index file pointing at this collection (URI, name, settings and
        the count at save time; no codes and no token): ``load_index(path)`` reconnects to it. A
        Milvus Lite file inside the folder of ``path`` is recorded relative to it, so the folder can
        be moved as a whole.
        """
        options = self._options()
        if not self.server:
            folder = Path(path).resolve().parent
            db = Path(self.uri)
            if db.is_relative_to(folder):
                options["uri"] = db.relative_to(folder).as_posix()
        write_container(
            path,
            Container(backend=self.backend, bits=self.bits, ntotal=self.ntotal, options=options),
        )

    @classmethod
    def _options_from_file(cls, options: dict[str, Any], path: str) -> dict[str, Any]:
        """A relative Milvus Lite URI in the file at ``path`` is relative to its folder."""
        uri = str(options.get("uri", ""))
        if uri and not is_server_uri(uri) and not Path(uri).is_absolute():
            options = {**options, "uri": str(Path(path).resolve().parent / uri)}
        return options

    def _restore(self, c: Container, path: str) -> None:
        """Nothing to read: the constructor has already connected to the collection."""

    def __repr__(self) -> str:
        return (
            f"MilvusBinaryIndex(bits={self.bits}, uri={self.uri!r}, "
            f"collection={self.collection!r}, index_type={self.index_type!r})"
        )


def _check_options(
    bits: int,
    uri: object,
    collection: object,
    index_type: str | None,
    nlist: int,
    nprobe: int,
    timeout: float,
    consistency: str,
) -> None:
    """The constructor's checks, before anything connects."""
    if bits % 8:
        raise ValueError(
            f"Milvus stores binary vectors in whole bytes: bits must be a multiple of 8, got "
            f"{bits}; use codes of {8 * code_bytes(bits)} bits, or the flat/mih backend"
        )
    if not isinstance(uri, str) or not uri:
        raise ValueError(
            "give a Milvus URI: a local file 'path/milvus.db' (Milvus Lite) or a server "
            "address 'http://host:19530'"
        )
    check_collection_name(collection)
    if index_type is not None and index_type not in INDEX_TYPES:
        raise ValueError(f"index_type must be one of {INDEX_TYPES}, got {index_type!r}")
    check_positive_int(nlist, "nlist")
    check_positive_int(nprobe, "nprobe")
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if consistency not in CONSISTENCY_LEVELS:
        raise ValueError(f"consistency must be one of {CONSISTENCY_LEVELS}, got {consistency!r}")


def _lite_path(uri: str) -> str:
    """The absolute path of a Milvus Lite file (``.db``), its folder created."""
    path = Path(uri).expanduser().resolve()
    if path.suffix != ".db":
        raise ValueError(
            f"a local Milvus Lite URI must be a file ending in '.db', got {uri!r} "
            "(for a server, give 'http://host:19530')"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path)
