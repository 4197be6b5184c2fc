"""Exhaustive Hamming search: XOR + popcount over 64-bit words, threaded with numba.

Top-k by counting selection instead of sorting: distances are integers in [0, bits], so each query
keeps a histogram of the distances it has accepted and a threshold ``thr`` (only ``d < thr`` can
still enter the top k). Once k items are held, ``thr`` is the largest held distance, so a later
item with an equal distance (and thus a larger position, i.e. a larger id) is rejected, and the
rare accepted item evicts one entry from the largest bucket. The hot loop is
:func:`~deephash.index._kernels.chunk_min`: a branch-free, vectorised minimum distance over a chunk
of codes, compared once per chunk with ``thr``; only chunks holding a candidate are rescanned.

Memory stays bounded for any number of queries: queries are processed in blocks (one block per
task, threads pick blocks), and the database is scanned in blocks that stay in cache while every
query of the block passes over them.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numba import prange

from deephash._numba import njit
from deephash.codes import to_words
from deephash.index._kernels import CHUNK, chunk_min, chunk_min4, dist
from deephash.index.in_memory import InMemoryIndex
from deephash.index.registry import INDEXES

__all__ = ["HammingIndex"]

_SUB = 32  # codes per sub-chunk when a chunk is rescanned
_DB_BYTES = 1 << 17  # database bytes per cache block (128 KiB: stays in L2 across the queries)


@njit
def _compact(qi: int, counts: Any, bd: Any, bp: Any, s: int) -> int:  # pragma: no cover - jit
    # Keep, for every distance d, the first counts[d] entries (the smallest positions).
    rem = counts[qi].copy()
    w = 0
    for i in range(s):
        d = bd[qi, i]
        if rem[d] > 0:
            rem[d] -= 1
            bd[qi, w] = d
            bp[qi, w] = bp[qi, i]
            w += 1
    return w


@njit
def _insert(
    d: int, j: int, qi: int, k: int, counts: Any, bd: Any, bp: Any, state: Any
) -> int:  # pragma: no cover - jit
    # state[qi] = (buffer size, live count, threshold); returns the new threshold.
    s = state[qi, 0]
    if s == bd.shape[1]:
        s = _compact(qi, counts, bd, bp, s)
    bd[qi, s] = d
    bp[qi, s] = j
    state[qi, 0] = s + 1
    counts[qi, d] += 1
    live = state[qi, 1]
    if live < k:
        live += 1
        state[qi, 1] = live
        if live == k:
            m = counts.shape[1] - 1
            while counts[qi, m] == 0:
                m -= 1
            state[qi, 2] = m
    else:
        m = state[qi, 2]
        counts[qi, m] -= 1
        while counts[qi, m] == 0:
            m -= 1
        state[qi, 2] = m
    return state[qi, 2]


@njit
def _rescan(
    q: Any,
    iq: int,
    x: Any,
    c0: int,
    c1: int,
    qi: int,
    k: int,
    counts: Any,
    bd: Any,
    bp: Any,
    state: Any,
) -> None:  # pragma: no cover - jit
    # a chunk x[c0:c1] that may hold a candidate for query iq: vectorised minimum per sub-chunk,
    # the scalar distances only where a sub-chunk can still enter the top k
    t = state[qi, 2]
    for s0 in range(c0, c1, _SUB):
        s1 = min(s0 + _SUB, c1)
        if chunk_min(q, iq, x, s0, s1) < t:
            for j in range(s0, s1):
                d = dist(q, iq, x, j)
                if d < t:
                    t = _insert(d, j, qi, k, counts, bd, bp, state)


@njit
def _scan(
    q: Any,
    iq: int,
    x: Any,
    j0: int,
    j1: int,
    qi: int,
    k: int,
    counts: Any,
    bd: Any,
    bp: Any,
    state: Any,
) -> None:  # pragma: no cover - jit
    for c0 in range(j0, j1, CHUNK):
        c1 = min(c0 + CHUNK, j1)
        if chunk_min(q, iq, x, c0, c1) < state[qi, 2]:  # rare once the top k has formed
            _rescan(q, iq, x, c0, c1, qi, k, counts, bd, bp, state)


@njit
def _scan4(
    q: Any,
    iq: int,
    x: Any,
    j0: int,
    j1: int,
    qi: int,
    k: int,
    counts: Any,
    bd: Any,
    bp: Any,
    state: Any,
) -> None:  # pragma: no cover - jit
    # queries iq .. iq + 3 (rows qi .. qi + 3 of the state) over x[j0:j1]
    for c0 in range(j0, j1, CHUNK):
        c1 = min(c0 + CHUNK, j1)
        m0, m1, m2, m3 = chunk_min4(q, iq, x, c0, c1)
        if m0 < state[qi, 2]:
            _rescan(q, iq, x, c0, c1, qi, k, counts, bd, bp, state)
        if m1 < state[qi + 1, 2]:
            _rescan(q, iq + 1, x, c0, c1, qi + 1, k, counts, bd, bp, state)
        if m2 < state[qi + 2, 2]:
            _rescan(q, iq + 2, x, c0, c1, qi + 2, k, counts, bd, bp, state)
        if m3 < state[qi + 3, 2]:
            _rescan(q, iq + 3, x, c0, c1, qi + 3, k, counts, bd, bp, state)


@njit
def _knn_block(
    q: Any, x: Any, k: int, bits: int, q0: int, nb: int, out_d: Any, out_p: Any
) -> None:  # pragma: no cover - jit
    """k-NN of the queries q0 .. q0 + nb - 1 into rows q0 .. of out_d/out_p (no threads)."""
    n = x.shape[0]
    dblock = max(CHUNK, (_DB_BYTES // (8 * x.shape[1])) // CHUNK * CHUNK)
    cap = 2 * k + 64
    counts = np.zeros((nb, bits + 1), dtype=np.int64)
    bd = np.empty((nb, cap), dtype=np.int32)
    bp = np.empty((nb, cap), dtype=np.int64)
    state = np.zeros((nb, 3), dtype=np.int64)
    state[:, 2] = bits + 1
    for j0 in range(0, n, dblock):
        j1 = min(j0 + dblock, n)
        for qi in range(0, nb - 3, 4):
            _scan4(q, q0 + qi, x, j0, j1, qi, k, counts, bd, bp, state)
        for qi in range(nb - nb % 4, nb):
            _scan(q, q0 + qi, x, j0, j1, qi, k, counts, bd, bp, state)
    for qi in range(nb):
        s = _compact(qi, counts, bd, bp, state[qi, 0])
        # stable counting sort by distance: rows end up sorted by (distance, position)
        start = np.zeros(bits + 2, dtype=np.int64)
        for d in range(bits + 1):
            start[d + 1] = start[d] + counts[qi, d]
        for i in range(s):
            d = bd[qi, i]
            o = start[d]
            start[d] = o + 1
            out_d[q0 + qi, o] = d
            out_p[q0 + qi, o] = bp[qi, i]


@njit(parallel=True)
def _knn(
    q: Any, x: Any, k: int, bits: int, qblock: int, out_d: Any, out_p: Any
) -> None:  # pragma: no cover - jit
    """:func:`_knn_block` of every block of ``qblock`` queries, run by numba's threads."""
    nq = q.shape[0]
    nblocks = (nq + qblock - 1) // qblock
    for b in prange(nblocks):
        q0 = b * qblock
        _knn_block(q, x, k, bits, q0, min(q0 + qblock, nq) - q0, out_d, out_p)


@njit(parallel=True)
def _range_hist(q: Any, x: Any, radius: int, hist: Any) -> None:  # pragma: no cover - jit
    for i in prange(q.shape[0]):
        for c0 in range(0, x.shape[0], CHUNK):
            c1 = min(c0 + CHUNK, x.shape[0])
            if chunk_min(q, i, x, c0, c1) < radius:
                for j in range(c0, c1):
                    d = dist(q, i, x, j)
                    if d < radius:
                        hist[i, d] += 1


@njit(parallel=True)
def _range_fill(
    q: Any, x: Any, radius: int, hist: Any, lims: Any, out_d: Any, out_p: Any
) -> None:  # pragma: no cover - jit
    for i in prange(q.shape[0]):
        start = np.empty(radius, dtype=np.int64)
        o = lims[i]
        for d in range(radius):
            start[d] = o
            o += hist[i, d]
        for c0 in range(0, x.shape[0], CHUNK):
            c1 = min(c0 + CHUNK, x.shape[0])
            if chunk_min(q, i, x, c0, c1) < radius:
                for j in range(c0, c1):
                    d = dist(q, i, x, j)
                    if d < radius:
                        o = start[d]
                        start[d] = o + 1
                        out_d[o] = d
                        out_p[o] = j


def range_search_words(
    qw: np.ndarray, xw: np.ndarray, radius: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exhaustive range search on uint64 words; results per query sorted by (distance, position).

    qw: uint64 (nq, W); xw: uint64 (n, W). Returns lims int64 (nq + 1,), distances int32,
    positions int64.
    """
    hist = np.zeros((qw.shape[0], radius), dtype=np.int64)
    _range_hist(qw, xw, radius, hist)
    lims = np.zeros(qw.shape[0] + 1, dtype=np.int64)
    np.cumsum(hist.sum(axis=1), out=lims[1:])
    out_d = np.empty(int(lims[-1]), dtype=np.int32)
    out_p = np.empty(int(lims[-1]), dtype=np.int64)
    _range_fill(qw, xw, radius, hist, lims, out_d, out_p)
    return lims, out_d, out_p


def knn_words(qw: np.ndarray, xw: np.ndarray, k: int, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Exhaustive k-NN on uint64 words, ties by smaller position; requires 1 <= k <= n.

    qw: uint64 (nq, W); xw: uint64 (n, W). Returns distances int32 (nq, k), positions int64 (nq, k).
    """
    nq = qw.shape[0]
    out_d = np.empty((nq, k), dtype=np.int32)
    out_p = np.empty((nq, k), dtype=np.int64)
    # Enough blocks for every thread, as large as possible (each block reads the database once).
    qblock = int(max(1, min(32, nq // (4 * numba.get_num_threads()))))
    if nq <= qblock:  # one block: launching numba's threads would cost more than it saves
        _knn_block(qw, xw, int(k), int(bits), 0, nq, out_d, out_p)
    else:
        _knn(qw, xw, int(k), int(bits), qblock, out_d, out_p)
    return out_d, out_p


@INDEXES.register("flat")
class HammingIndex(InMemoryIndex):
    """Exact exhaustive Hamming index (like ``faiss.IndexBinaryFlat``), multi-threaded.

    bits: code length. Uses numba's thread count (``numba.set_num_threads``). Memory: the codes
    only (padded to whole 64-bit words when ``bits`` is not a multiple of 64).
    """

    backend = "flat"

    def __init__(self, bits: int) -> None:
        super().__init__(bits)
        self._words: np.ndarray | None = None

    def _on_change(self, appended_from: int | None) -> None:
        if self.nbytes % 8 == 0:
            self._words = None  # to_words is then a free view of the codes
        elif appended_from is not None and self._words is not None:
            self._words = np.concatenate([self._words, to_words(self.codes_[appended_from:])])
        else:
            self._words = None

    def _get_words(self) -> np.ndarray:
        if self.nbytes % 8 == 0:
            return to_words(self.codes_)
        if self._words is None or self._words.shape[0] != self.ntotal:
            self._words = to_words(self.codes_)
        return self._words

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return knn_words(to_words(queries), self._get_words(), k, self.bits)

    def _range_search(
        self, queries: np.ndarray, radius: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return range_search_words(to_words(queries), self._get_words(), radius)
