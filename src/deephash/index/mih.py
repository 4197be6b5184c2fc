"""Multi-index hashing (Norouzi, Punjani & Fleet, "Fast Search in Hamming Space with Multi-Index
Hashing", CVPR 2012; "Fast Exact Search in Hamming Space with Multi-Index Hashing", TPAMI 2014).

A ``bits``-bit code is cut into ``m`` disjoint substrings of ``s = bits / m`` bits (lengths differ
by at most one); substring ``i`` indexes a direct table: an offsets array of size ``2^s_i + 1``
over the positions sorted by substring value (a counting sort), so a bucket lookup is two loads.

Pigeonhole (paper, Prop. 1): if ``||h - g|| <= r`` then some substring has ``||h_i - g_i|| <=
floor(r / m)``. k-NN search grows the substring radius ``r' = 0, 1, 2, ...``; for each ``r'`` it
probes the substrings ``i = 0..m-1`` in turn, enumerating every substring value at distance exactly
``r'`` from the query's. An item not found after substring ``i`` at radius ``r'`` differs by at
least ``r' + 1`` bits in substrings ``0..i`` and at least ``r'`` in the others, so its full
distance is ``>= (i + 1)(r' + 1) + (m - i - 1) r' = m r' + i + 1`` (TPAMI 2014, Sec. 4.2). Hence
every item at distance ``<= m r' + i`` has been seen, and search stops as soon as the k-th best
(distance, position) found has distance ``<= m r' + i``. Candidates are deduplicated with a
per-thread bitmap, full distances are exact, and the top k is a max-heap on (distance, position),
so ties go to the smaller position, which is the smaller id (storage is sorted by id).
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
from numba import prange

from deephash._numba import njit, popcount64
from deephash.codes import to_words
from deephash.index.base import BinaryIndex

__all__ = ["MultiIndexHashing", "default_num_tables"]

MAX_SUBSTRING_BITS = 24  # a direct table of 2^24 offsets is 64 MiB; beyond that m grows


def default_num_tables(bits: int, n: int) -> int:
    """Number of substrings m: the paper's ``m = bits / log2(n)``, so substrings have about
    ``log2(n)`` bits and a bucket holds O(1) codes; at least ``ceil(bits / 24)`` so no table is
    larger than 2^24 entries, at most ``bits``."""
    m = round(bits / math.log2(max(n, 2)))
    return int(min(bits, max(m, math.ceil(bits / MAX_SUBSTRING_BITS), 1)))


@njit
def _substring(x: Any, row: int, start: int, length: int) -> Any:  # pragma: no cover - jit
    w = start >> 6
    o = start & 63
    v = x[row, w] >> np.uint64(o)
    if o + length > 64:
        v |= x[row, w + 1] << np.uint64(64 - o)
    return np.int64(v & np.uint64((1 << length) - 1))


@njit(parallel=True)
def _build_tables(
    x: Any, starts: Any, lens: Any, bases: Any, offsets: Any, positions: Any
) -> None:  # pragma: no cover - jit
    n = x.shape[0]
    for i in prange(starts.shape[0]):
        size = 1 << lens[i]
        base = bases[i]
        vals = np.empty(n, dtype=np.int64)
        cnt = np.zeros(size + 1, dtype=np.int64)
        for j in range(n):
            v = _substring(x, j, starts[i], lens[i])
            vals[j] = v
            cnt[v + 1] += 1
        for v in range(size):
            cnt[v + 1] += cnt[v]
        for v in range(size + 1):
            offsets[base + v] = cnt[v]
        for j in range(n):  # ascending j: buckets list positions in increasing order
            v = vals[j]
            positions[i, cnt[v]] = j
            cnt[v] += 1


@njit
def _dist(q: Any, iq: int, x: Any, j: int) -> int:  # pragma: no cover - jit
    d = 0
    for w in range(x.shape[1]):
        d += popcount64(q[iq, w] ^ x[j, w])
    return d


@njit
def _heap_push(hd: Any, hp: Any, size: int, d: int, p: int) -> int:  # pragma: no cover - jit
    # Max-heap on (distance, position) of capacity hd.shape[0]; returns the new size.
    k = hd.shape[0]
    if size < k:
        i = size
        size += 1
    elif d < hd[0] or (d == hd[0] and p < hp[0]):
        # replace the top, sift down
        i = 0
        while True:
            c = 2 * i + 1
            if c >= k:
                break
            if c + 1 < k and (hd[c + 1] > hd[c] or (hd[c + 1] == hd[c] and hp[c + 1] > hp[c])):
                c += 1
            if hd[c] > d or (hd[c] == d and hp[c] > p):
                hd[i] = hd[c]
                hp[i] = hp[c]
                i = c
            else:
                break
        hd[i] = d
        hp[i] = p
        return size
    else:
        return size
    while i > 0:  # sift up
        par = (i - 1) // 2
        if hd[par] < d or (hd[par] == d and hp[par] < p):
            hd[i] = hd[par]
            hp[i] = hp[par]
            i = par
        else:
            break
    hd[i] = d
    hp[i] = p
    return size


@njit
def _probe(
    q: Any,
    iq: int,
    x: Any,
    i: int,
    qsub: int,
    r: int,
    lens: Any,
    bases: Any,
    offsets: Any,
    positions: Any,
    visited: Any,
    touched: Any,
    nt: int,
    mode: int,
    radius: int,
    hd: Any,
    hp: Any,
    hsize: int,
    out_d: Any,
    out_p: Any,
    nout: int,
    probes: int,
    budget: int,
) -> tuple[Any, int, int, int, int]:  # pragma: no cover - jit
    """Visit every bucket of table i at substring distance exactly r from qsub.

    mode 0: push candidates into the heap; mode 1: count those with d < radius; mode 2: also
    write them to out_d[0]/out_p[0]. Gives up once more than ``budget`` buckets were probed.
    Returns (touched, nt, hsize, nout, probes).
    """
    s = lens[i]
    limit = 1 << s
    mask = (1 << r) - 1
    base = bases[i]
    while mask < limit:
        probes += 1
        if probes > budget:
            break
        v = qsub ^ mask
        for t in range(offsets[base + v], offsets[base + v + 1]):
            p = positions[i, t]
            wi = p >> 6
            bit = np.uint64(1) << np.uint64(p & 63)
            if visited[wi] & bit:
                continue
            visited[wi] |= bit
            if nt == touched.shape[0]:
                grown = np.empty(2 * nt, dtype=touched.dtype)
                grown[:nt] = touched
                touched = grown
            touched[nt] = p
            nt += 1
            d = _dist(q, iq, x, p)
            if mode == 0:
                if hsize < hd.shape[0] or d <= hd[0]:
                    hsize = _heap_push(hd, hp, hsize, d, p)
            elif d < radius:
                if mode == 2:
                    out_d[0, nout] = d
                    out_p[0, nout] = p
                nout += 1
        if mask == 0:
            break
        # Gosper's hack: next integer with the same number of set bits
        c = mask & -mask
        nxt = mask + c
        mask = (((nxt ^ mask) >> 2) // c) | nxt
    return touched, nt, hsize, nout, probes


@njit(parallel=True)
def _mih_query(
    q: Any,
    x: Any,
    k: int,
    radius: int,
    mode: int,
    starts: Any,
    lens: Any,
    bases: Any,
    offsets: Any,
    positions: Any,
    nchunks: int,
    out_d: Any,
    out_p: Any,
    lims: Any,
) -> None:  # pragma: no cover - jit
    """mode 0: k-NN into out_d/out_p (nq, k); mode 1: per-query counts of d < radius into
    lims[1:]; mode 2: fill results into out_d[0]/out_p[0] at lims, sorted by (d, position)."""
    nq = q.shape[0]
    n = x.shape[0]
    m = starts.shape[0]
    maxlen = 0
    for i in range(m):
        maxlen = max(maxlen, lens[i])
    per = (nq + nchunks - 1) // nchunks
    budget = n // 8 + 256  # a bucket probe costs about as much as scanning 8 codes
    for c in prange(nchunks):
        visited = np.zeros((n + 63) // 64, dtype=np.uint64)
        touched = np.empty(1024, dtype=np.int64)
        hd = np.empty(max(k, 1), dtype=np.int32)
        hp = np.empty(max(k, 1), dtype=np.int64)
        qsubs = np.empty(m, dtype=np.int64)
        seg_d = np.empty((1, 1), dtype=np.int32)
        seg_p = np.empty((1, 1), dtype=np.int64)
        for iq in range(c * per, min((c + 1) * per, nq)):
            for i in range(m):
                qsubs[i] = _substring(q, iq, starts[i], lens[i])
            nt = 0
            hsize = 0
            nout = 0
            if mode == 2:
                seg_d = np.empty((1, lims[iq + 1] - lims[iq]), dtype=np.int32)
                seg_p = np.empty((1, lims[iq + 1] - lims[iq]), dtype=np.int64)
            rmax = maxlen if mode == 0 else min(maxlen, (radius - 1) // m)
            done = False
            probes = 0
            for r in range(rmax + 1):
                for i in range(m):
                    if r <= lens[i]:
                        touched, nt, hsize, nout, probes = _probe(
                            q, iq, x, i, qsubs[i], r, lens, bases, offsets, positions, visited,
                            touched, nt, mode, radius, hd, hp, hsize, seg_d, seg_p, nout,
                            probes, budget,
                        )  # fmt: skip
                    if probes > budget:
                        break
                    if mode == 0 and (nt == n or (hsize == k and hd[0] <= m * r + i)):
                        done = True
                        break
                if done or probes > budget:
                    break
            if probes > budget:
                # Enumerating substring balls would cost more than a scan (long substrings on a
                # small database, or a far query): finish this query exhaustively instead.
                hsize = 0
                nout = 0
                for p in range(n):
                    d = _dist(q, iq, x, p)
                    if mode == 0:
                        if hsize < k or d <= hd[0]:
                            hsize = _heap_push(hd, hp, hsize, d, p)
                    elif d < radius:
                        if mode == 2:
                            seg_d[0, nout] = d
                            seg_p[0, nout] = p
                        nout += 1
            if mode == 0:
                key = np.empty(hsize, dtype=np.int64)
                for t in range(hsize):
                    key[t] = hd[t] * np.int64(n + 1) + hp[t]
                order = np.argsort(key)
                for t in range(hsize):
                    out_d[iq, t] = hd[order[t]]
                    out_p[iq, t] = hp[order[t]]
            elif mode == 1:
                lims[iq + 1] = nout
            else:
                key = np.empty(nout, dtype=np.int64)
                for t in range(nout):
                    key[t] = seg_d[0, t] * np.int64(n + 1) + seg_p[0, t]
                order = np.argsort(key)
                o = lims[iq]
                for t in range(nout):
                    out_d[0, o + t] = seg_d[0, order[t]]
                    out_p[0, o + t] = seg_p[0, order[t]]
            # clear only what this query touched (cheaper than re-zeroing the bitmap)
            if nt * 8 < visited.shape[0]:
                for t in range(nt):
                    visited[touched[t] >> 6] = 0
            else:
                visited[:] = 0


class MultiIndexHashing(BinaryIndex):
    """Exact sub-linear k-NN and range search in Hamming space by multi-index hashing.

    bits: code length. num_tables: number of substrings m; ``None`` picks
    :func:`default_num_tables` (``bits / log2(n)``) from the database size at (re)build time.
    Tables are built lazily on the first search after ``add``. Memory per code: the code, plus
    ``4 m`` bytes of positions, plus ``m`` offset tables of ``2^(bits/m)`` int32 entries.
    Threads: numba's (``numba.set_num_threads``).
    """

    backend = "mih"

    def __init__(self, bits: int, num_tables: int | None = None) -> None:
        super().__init__(bits)
        if num_tables is not None:
            if not isinstance(num_tables, int) or not 1 <= num_tables <= bits:
                raise ValueError(
                    f"num_tables must be an integer in [1, {bits}], got {num_tables!r}"
                )
            if math.ceil(bits / num_tables) > MAX_SUBSTRING_BITS:
                raise ValueError(
                    f"num_tables={num_tables} gives {math.ceil(bits / num_tables)}-bit substrings; "
                    f"at most {MAX_SUBSTRING_BITS} are supported, use num_tables >= "
                    f"{math.ceil(bits / MAX_SUBSTRING_BITS)}"
                )
        self.num_tables = num_tables
        self._tables: tuple[np.ndarray, ...] | None = None

    @property
    def num_tables_(self) -> int:
        """The number of substrings in use for the current database."""
        return self.num_tables or default_num_tables(self.bits, self.ntotal)

    def _on_change(self, appended_from: int | None) -> None:
        self._tables = None

    def _options(self) -> dict[str, Any]:
        return {"num_tables": self.num_tables}

    def _build(self) -> tuple[np.ndarray, ...]:
        if self._tables is None:
            m = self.num_tables_
            lens = np.array([self.bits // m + (i < self.bits % m) for i in range(m)], np.int64)
            starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
            sizes = (1 << lens) + 1
            bases = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
            pos_dtype = np.int32 if self.ntotal < 2**31 else np.int64
            offsets = np.empty(int(sizes.sum()), dtype=pos_dtype)
            positions = np.empty((m, self.ntotal), dtype=pos_dtype)
            words = to_words(self.codes_)
            _build_tables(words, starts, lens, bases, offsets, positions)
            self._tables = (words, starts, lens, bases, offsets, positions)
        return self._tables

    def _nchunks(self, nq: int) -> int:
        return int(max(1, min(nq, 4 * numba.get_num_threads())))

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        words, starts, lens, bases, offsets, positions = self._build()
        qw = to_words(queries)
        out_d = np.empty((qw.shape[0], k), dtype=np.int32)
        out_p = np.empty((qw.shape[0], k), dtype=np.int64)
        lims = np.zeros(1, dtype=np.int64)
        _mih_query(qw, words, k, 0, 0, starts, lens, bases, offsets, positions,
                   self._nchunks(qw.shape[0]), out_d, out_p, lims)  # fmt: skip
        return out_d, out_p

    def _range_search(
        self, queries: np.ndarray, radius: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        words, starts, lens, bases, offsets, positions = self._build()
        qw = to_words(queries)
        nq = qw.shape[0]
        lims = np.zeros(nq + 1, dtype=np.int64)
        dummy_d = np.empty((1, 1), dtype=np.int32)
        dummy_p = np.empty((1, 1), dtype=np.int64)
        nch = self._nchunks(nq)
        _mih_query(qw, words, 0, radius, 1, starts, lens, bases, offsets, positions, nch,
                   dummy_d, dummy_p, lims)  # fmt: skip
        np.cumsum(lims, out=lims)
        out_d = np.empty((1, int(lims[-1])), dtype=np.int32)
        out_p = np.empty((1, int(lims[-1])), dtype=np.int64)
        _mih_query(qw, words, 0, radius, 2, starts, lens, bases, offsets, positions, nch,
                   out_d, out_p, lims)  # fmt: skip
        return lims, out_d[0], out_p[0]
