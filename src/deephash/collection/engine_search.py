"""Searching a collection whose index is an external engine (Milvus), in one engine request.

The engine is asked at Bounded consistency (no wait for the server's clock) for k + 1 rows plus
one per tombstone (see :mod:`.freshness`); its answer is merged with the pending delta's by
(distance, id), tombstoned and unknown ids dropped, an id in both counted once. Ties at the cut
(the k-th and (k+1)-th at one distance b) are settled from the collection's own codes, which it
holds in memory anyway: the smallest live ids at distance exactly b, scanned in id order and
stopping at the first ones needed. Milvus orders equal distances as it likes, and the flat index
ranks them by id; reading the whole tied band from Milvus instead can mean thousands of rows per
search (codes of one class often share one code), while the scan usually stops in the first
block. For an approximate engine (``BIN_IVF_FLAT``) the engine's ties stand.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

import numpy as np

from deephash._numba import njit, popcount64
from deephash.index import BinaryIndex


class SearchedView(Protocol):
    """What a search reads of the collection's view (:class:`~deephash.collection.view.View`)."""

    @property
    def ids(self) -> np.ndarray: ...
    @property
    def codes(self) -> np.ndarray: ...
    @property
    def main(self) -> BinaryIndex | None: ...
    @property
    def delta(self) -> BinaryIndex | None: ...
    @property
    def removed(self) -> frozenset[int]: ...


__all__ = ["EngineSearch", "engine_candidates", "smallest_ids_at"]

EngineSearch = Callable[[BinaryIndex, np.ndarray, int], tuple[np.ndarray, np.ndarray]]
"""How the engine is asked: (index, query codes uint8 (nq, nbytes), n) -> the n nearest rows,
distances int32 (nq, n) and ids int64 (nq, n), as :meth:`BinaryIndex.search` answers (for
instance through :class:`~deephash.collection.engine_batcher.EngineBatcher`)."""


def _ask(index: BinaryIndex, q: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    return index.search(q, n)


@njit
def _first_at(codes: np.ndarray, query: np.ndarray, distance: int, n: int) -> np.ndarray:
    """Row numbers (int64, ascending, at most n) of the first rows of codes uint8 (N, nbytes)
    at Hamming ``distance`` from query uint8 (nbytes,); the scan stops at the n-th."""
    out = np.empty(n, np.int64)
    found = 0
    for i in range(codes.shape[0]):
        d = 0
        for j in range(codes.shape[1]):
            d += popcount64(np.uint64(codes[i, j] ^ query[j]))
        if d == distance:
            out[found] = i
            found += 1
            if found == n:
                break
    return out[:found]


def smallest_ids_at(view: SearchedView, query: np.ndarray, distance: int, n: int) -> np.ndarray:
    """int64 (<= n,): the n smallest ids of ``view`` whose code is at Hamming ``distance`` from
    query (uint8 (nbytes,)), scanning the codes in id order and stopping at the n-th (a compiled
    loop: a scan of 1,000,000 64-bit codes costs a few ms where it does not stop early)."""
    if n <= 0 or len(view.ids) == 0:
        return np.zeros(0, np.int64)
    rows = _first_at(view.codes, np.ascontiguousarray(query, dtype=np.uint8), distance, n)
    return np.asarray(view.ids[rows], dtype=np.int64)


def engine_candidates(
    view: SearchedView,
    q: np.ndarray,
    k: int,
    radius: int | None,
    kernel_lock: threading.Lock,
    ask: EngineSearch = _ask,
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest live items of each query code of q (uint8 (nq, nbytes)) by (Hamming
    distance, id), only those within ``radius`` when given: (distances int32 (nq, k), ids int64
    (nq, k)), each row sorted, -1 where a row has fewer. ``kernel_lock`` serialises the local
    (numba) search of the delta; ``ask`` sends the engine its request."""
    dist_out = np.full((len(q), k), -1, dtype=np.int32)
    ids_out = np.full((len(q), k), -1, dtype=np.int64)
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    in_engine = len(view.ids) - (0 if view.delta is None else view.delta.ntotal)
    if view.main is not None and in_engine > 0:
        parts.append(ask(view.main, q, k + 1 + len(view.removed)))
    if view.delta is not None:
        with kernel_lock:
            parts.append(view.delta.search(q, min(k + 1, view.delta.ntotal)))
    if not parts or not len(q):
        return dist_out, ids_out
    dist = np.concatenate([d for d, _ in parts], axis=1).astype(np.int64)
    ids = np.concatenate([i for _, i in parts], axis=1)
    removed = np.fromiter(view.removed, np.int64, len(view.removed))
    exact = getattr(view.main, "index_type", "BIN_FLAT") == "BIN_FLAT"
    for row, (d_row, i_row) in enumerate(zip(dist, ids)):
        pos = np.minimum(np.searchsorted(view.ids, i_row), len(view.ids) - 1)
        ok = (i_row >= 0) & (view.ids[pos] == i_row)  # live: not what a lost removal left there
        if len(removed):
            ok &= ~np.isin(i_row, removed)
        d_row, i_row = d_row[ok], i_row[ok]
        order = np.lexsort((i_row, d_row))
        order = order[np.r_[True, i_row[order][1:] != i_row[order][:-1]]]  # in engine and delta
        d_row, i_row = d_row[order], i_row[order]
        tied = len(d_row) > k and d_row[k - 1] == d_row[k]
        if exact and tied and (radius is None or d_row[k - 1] <= radius):  # a tie at the cut
            b = int(d_row[k - 1])
            keep = d_row < b
            fill = smallest_ids_at(view, q[row], b, k - int(keep.sum()))
            d_row = np.concatenate([d_row[keep], np.full(len(fill), b, np.int64)])
            i_row = np.concatenate([i_row[keep], fill])
        if radius is not None:
            d_row, i_row = d_row[d_row <= radius], i_row[d_row <= radius]
        d_row, i_row = d_row[:k], i_row[:k]
        dist_out[row, : len(d_row)] = d_row
        ids_out[row, : len(i_row)] = i_row
    return dist_out, ids_out
