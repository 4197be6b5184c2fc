"""Milvus searches sorted by (distance, id), and the band reads that make them exact.

Milvus orders equal distances as it likes and cuts the top k anywhere inside the last tied
distance, so with ``exact_ties`` a search asks for k + 1 rows, and only where the k-th and (k+1)-th
are at the same distance is that distance re-read in full with a range search and its smallest ids
kept. Milvus returns at most 16,384 results per query and request, so a band that fills that limit
is split into narrower distance bands and, within one distance, into id ranges, until every part
comes back unsaturated: a band is complete for ``BIN_FLAT`` whatever its size. Milvus's range
search keeps ``range_filter <= distance < radius`` for ``HAMMING``, faiss's convention.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from deephash.index.milvus.client import RETRIES, Connection

__all__ = ["Hits", "Searcher", "band", "complete_ties", "hits", "request_limit"]

_MAX_LIMIT = 16384  # Milvus's cap on results per query (topk) and on queries per request (nq)
_RESULT_BUDGET = 1 << 20  # nq * limit per search request: keeps each gRPC answer a few MB

Hits = list[tuple[np.ndarray, np.ndarray]]
"""Per query: distances int64 and ids int64, sorted by (distance, id)."""


@dataclass(frozen=True)
class Searcher:
    """What a search request needs: the connection, the collection's index type (``BIN_FLAT``:
    exact; ``BIN_IVF_FLAT``: approximate) and how many IVF cells a query searches."""

    conn: Connection
    index_type: str
    nprobe: int


def request_limit(k: int, exact_ties: bool) -> int:
    """Rows a k-NN search asks Milvus for: k + 1 with ``exact_ties`` (to see whether the cut falls
    inside a tie), within Milvus's cap."""
    return min(k + 1 if exact_ties else k, _MAX_LIMIT)


def hits(
    s: Searcher, queries: list[bytes], limit: int, params: dict[str, Any], expr: str = ""
) -> Hits:
    """Milvus search of packed queries, batched, at most ``limit`` rows per query; ``params``:
    the search parameters (a range search's ``radius`` and ``range_filter``); ``expr``: a filter."""
    if s.index_type == "BIN_IVF_FLAT":
        params = {**params, "nprobe": s.nprobe}
    search_params = {"metric_type": "HAMMING", "params": params}
    step = max(1, min(_MAX_LIMIT, _RESULT_BUDGET // limit))
    out: Hits = []
    for lo in range(0, len(queries), step):
        data = queries[lo : lo + step]
        res = s.conn.read(
            lambda c, level, data=data: c.search(  # type: ignore[misc]
                s.conn.collection,
                data=data,
                limit=limit,
                anns_field="code",
                search_params=search_params,
                filter=expr,
                output_fields=[],
                consistency_level=level,
                timeout=s.conn.timeout,
                retry_times=RETRIES,
            )
        )
        out += [_sorted_hits(row) for row in res]
    return out


def _sorted_hits(row: Any) -> tuple[np.ndarray, np.ndarray]:
    """One query's answer as distances int64 and ids int64, sorted by (distance, id)."""
    if hasattr(row, "ids"):
        ids = np.asarray(row.ids, dtype=np.int64)
        dist = np.asarray(row.distances, dtype=np.float64)
    else:  # pragma: no cover - older pymilvus result objects
        ids = np.asarray([h["id"] for h in row], dtype=np.int64)
        dist = np.asarray([h["distance"] for h in row], dtype=np.float64)
    d = np.rint(dist).astype(np.int64)
    order = np.lexsort((ids, d))
    return d[order], ids[order]


def band(
    s: Searcher, queries: list[bytes], lo: int, hi: int, id_lo: int = 0, id_hi: int | None = None
) -> Hits:
    """Every stored code with ``lo <= distance < hi`` and ``id_lo <= id < id_hi``, per query
    sorted by (distance, id); complete for BIN_FLAT however many there are."""
    expr = "" if id_lo == 0 and id_hi is None else f"id >= {id_lo}"
    if id_hi is not None:
        expr += f" and id < {id_hi}"
    out = hits(s, queries, _MAX_LIMIT, {"radius": hi, "range_filter": lo}, expr)
    full = [j for j, (d, _) in enumerate(out) if d.shape[0] >= _MAX_LIMIT]
    if full and hi - lo > 1:  # saturated: split the distance range
        mid = (lo + hi) // 2
        sub = [queries[j] for j in full]
        near = band(s, sub, lo, mid, id_lo, id_hi)
        far = band(s, sub, mid, hi, id_lo, id_hi)
        for j, a, b in zip(full, near, far):
            out[j] = (np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]]))
    else:  # saturated at one distance: split the id range at the median returned id
        for j in full:
            m = int(out[j][1][_MAX_LIMIT // 2])
            (a,) = band(s, [queries[j]], lo, hi, id_lo, m)
            (b,) = band(s, [queries[j]], lo, hi, m, id_hi)
            out[j] = (np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]]))
    return out


def complete_ties(
    s: Searcher, queries: list[bytes], found: Hits, k: int, limit: int, exact_ties: bool, bits: int
) -> None:
    """Make each row of ``found`` (a search's answer to ``limit`` rows per query) its k nearest
    by (distance, id), in place: rows cut inside a tie, by Milvus's cap or, for an approximate
    index, short of k are completed from that distance on by band reads, smallest ids first."""
    start = _cut(found, k, limit, exact_ties, s.index_type == "BIN_FLAT")
    while start:
        b = min(start.values())
        rows = [r for r, v in start.items() if v == b]
        for r, (bd, bi) in zip(rows, band(s, [queries[r] for r in rows], b, b + 1)):
            need = k - found[r][0].shape[0]
            found[r] = (
                np.concatenate([found[r][0], bd[:need]]),
                np.concatenate([found[r][1], bi[:need]]),
            )
            if found[r][0].shape[0] == k or b >= bits:
                del start[r]
            else:
                start[r] = b + 1


def _cut(found: Hits, k: int, limit: int, exact_ties: bool, flat: bool) -> dict[int, int]:
    """Trim each row of ``found`` (sorted by (distance, id), at most ``limit`` rows) to what is
    certain, in place; returns {row: distance from which it must be completed by band reads}.

    A row is complete when Milvus returned fewer than ``limit`` rows (it holds no more;
    BIN_FLAT), or when its k-th and (k+1)-th distances differ. It is completed from the k-th
    distance when those two are equal (``exact_ties``: which ids Milvus kept inside that tie is
    its choice), from its last distance when k > 16,384 (the cap) filled it, and, for
    BIN_IVF_FLAT, when fewer than k came back."""
    start: dict[int, int] = {}
    for r, (d, i) in enumerate(found):
        got = d.shape[0]
        if got == limit and got > k:  # asked for k + 1
            if d[k - 1] != d[k]:
                found[r] = (d[:k], i[:k])
                continue
            b = int(d[k - 1])
        elif got == limit and (limit < k or (exact_ties and limit == k)):
            # Milvus's cap (16,384), not the collection, ended the row
            b = int(d[-1])
        elif got < k and not flat:
            b = int(d[-1]) if got else 0
        else:
            continue
        keep = d < b
        found[r] = (d[keep], i[keep])
        start[r] = b
    return start
