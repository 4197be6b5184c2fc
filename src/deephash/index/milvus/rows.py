"""Reading and writing rows of a deephash Milvus collection: queries by expression or by id, the
count, a full scan, the largest id, and chunked inserts and deletes."""

from __future__ import annotations

from typing import Any

import numpy as np

from deephash.index.milvus.client import RETRIES, Connection

__all__ = ["count", "delete_all", "delete_ids", "max_id", "query", "rows_of", "scan", "write_rows"]

CHUNK = 4096  # rows per insert request and ids per `id in [...]` expression


def query(
    conn: Connection, expr: str, fields: list[str], limit: int | None = None
) -> list[dict[str, Any]]:
    """Rows matching ``expr`` (``""``: any), with ``fields``, at the connection's read level."""
    kwargs: dict[str, Any] = {} if limit is None else {"limit": limit}
    return conn.read(
        lambda c, level: list(
            c.query(
                conn.collection,
                filter=expr,
                output_fields=fields,
                consistency_level=level,
                timeout=conn.timeout,
                retry_times=RETRIES,
                **kwargs,
            )
        )
    )


def count(conn: Connection, expr: str = "") -> int:
    """A count at Strong consistency (it waits for the server's time tick, up to 200 ms): it is
    never on the search path, and a count that missed recent writes would mislead."""
    rows = conn.request(
        lambda c: list(
            c.query(
                conn.collection,
                filter=expr,
                output_fields=["count(*)"],
                consistency_level="Strong",
                timeout=conn.timeout,
                retry_times=RETRIES,
            )
        )
    )
    return int(rows[0]["count(*)"])


def rows_of(conn: Connection, ids: np.ndarray, fields: list[str]) -> list[dict[str, Any]]:
    """The stored rows with these ids int64 (m,) (unknown ids are absent), in no particular
    order."""
    out: list[dict[str, Any]] = []
    for lo in range(0, ids.shape[0], CHUNK):
        out += query(conn, f"id in {ids[lo : lo + CHUNK].tolist()}", ["id", *fields])
    return out


def scan(conn: Connection, fields: list[str]) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Every row, sorted by id: ids int64 (ntotal,) and the rows."""

    def read_all(c: Any) -> list[dict[str, Any]]:
        it = c.query_iterator(
            conn.collection,
            batch_size=10_000,
            filter="",
            output_fields=["id", *fields],
            timeout=conn.timeout,
            # a full read: worth waiting for the server's time tick (its Session timestamp is
            # not honoured by the iterator's first request)
            consistency_level="Strong",
        )
        rows: list[dict[str, Any]] = []
        try:
            while batch := it.next():
                rows += batch
        finally:
            it.close()
        return rows

    rows = conn.request(read_all)
    ids = np.fromiter((r["id"] for r in rows), dtype=np.int64, count=len(rows))
    order = np.argsort(ids, kind="stable")
    return ids[order], [rows[i] for i in order]


def max_id(conn: Connection) -> int:
    """Largest stored id (-1 if empty) in O(log id) requests: doubling, then bisection."""

    def witness(lo: int) -> int | None:  # any stored id >= lo
        rows = query(conn, f"id >= {lo}", ["id"], limit=1)
        return int(rows[0]["id"]) if rows else None

    best = witness(0)
    if best is None:
        return -1
    step = 1
    while (w := witness(best + step)) is not None:
        best, step = w, 2 * step
    hi = best + step  # no id >= hi
    while hi - best > 1:
        mid = (best + hi) // 2
        w = witness(mid)
        best, hi = (w, hi) if w is not None else (best, mid)
    return best


def write_rows(
    conn: Connection, rows: list[dict[str, Any]], *, upsert: bool = False, retry: bool = False
) -> None:
    """Insert (or upsert) rows ``{"id", "code", "meta"}`` in requests of ``CHUNK`` rows; ``retry``:
    once more with a fresh client after a connection failure (safe for upserts only)."""
    for lo in range(0, len(rows), CHUNK):
        chunk = rows[lo : lo + CHUNK]
        conn.request(
            lambda c, chunk=chunk: (c.upsert if upsert else c.insert)(  # type: ignore[misc]
                conn.collection, chunk, timeout=conn.timeout, retry_times=RETRIES
            ),
            retry=retry,
        )


def delete_ids(conn: Connection, ids: np.ndarray) -> None:
    """Delete these ids int64 (m,) in requests of ``CHUNK`` ids (ids not stored are ignored)."""
    for lo in range(0, ids.shape[0], CHUNK):
        part = ids[lo : lo + CHUNK].tolist()
        conn.request(
            lambda c, part=part: c.delete(  # type: ignore[misc]
                conn.collection, ids=part, timeout=conn.timeout, retry_times=RETRIES
            )
        )
        conn.untimed()


def delete_all(conn: Connection) -> None:
    """Delete every row of the collection (it and its index stay)."""
    conn.request(
        lambda c: c.delete(
            conn.collection, filter="id >= 0", timeout=conn.timeout, retry_times=RETRIES
        )
    )
    conn.untimed()
