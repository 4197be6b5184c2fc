"""Multi-index hashing (Norouzi, Punjani & Fleet, "Fast Search in Hamming Space with Multi-Index
Hashing", CVPR 2012; "Fast Exact Search in Hamming Space with Multi-Index Hashing", TPAMI 2014).

A ``bits``-bit code is cut into ``m`` disjoint substrings of ``s = bits / m`` bits (lengths differ
by at most one); substring ``i`` indexes a direct table: an offsets array of size ``2^s_i + 1``
over the positions of the codes sorted by substring value (a counting sort), so a bucket lookup is
two loads. A table holds positions only, 3 bytes each up to 2^24 codes (a low uint16 and a high
uint8; 4 bytes beyond), not copies of the codes: at 10M x 64-bit codes the index grows by about
20 bytes per code (the 8-byte code, 4 x 3 bytes of positions, the offsets), where per-table copies
took 56. Verifying a bucket reads each candidate's code by position (the vectorised gather minimum
of :mod:`deephash.index._kernels`), a random access that costs about as much as scanning a few
dozen codes; the cost model below counts it, and queries for which probing would cost more than a
scan are scanned instead.

Pigeonhole (paper, Prop. 1): if ``||h - g|| <= r`` then some substring has ``||h_i - g_i|| <=
floor(r / m)``. k-NN search grows the substring radius ``r' = 0, 1, 2, ...``; for each ``r'`` it
probes the substrings ``i = 0..m-1`` in turn, enumerating every substring value at distance exactly
``r'`` from the query's. An item not found after substring ``i`` at radius ``r'`` differs by at
least ``r' + 1`` bits in substrings ``0..i`` and at least ``r'`` in the others, so its full
distance is ``>= (i + 1)(r' + 1) + (m - i - 1) r' = m r' + i + 1`` (TPAMI 2014, Sec. 4.2). Hence
every item at distance ``<= m r' + i`` has been seen, and search stops as soon as the k-th best
(distance, position) found has distance ``<= m r' + i``.

No visited set: an item is reached first by the probe ``(r', i)`` with ``r' = min_t s_t`` and ``i``
the first table attaining it (``s_t`` its substring distances), so a candidate found in table ``i``
at radius ``r'`` is counted only if ``s_t > r'`` for ``t < i`` and ``s_t >= r'`` for ``t > i`` —
computed from the candidate's own code, and only for the rare candidates that beat the current
k-th distance. Full distances are exact and the top k is a max-heap on (distance, position), so ties
go to the smaller position, which is the smaller id (storage is sorted by id).

A query whose probing would cost more than a fraction of a scan (long substrings, far neighbours)
gives up early and is answered by the exhaustive scan of :mod:`deephash.index.flat`; when most of a
first batch of queries give up, the rest go straight to the scan.

Repeated codes: class-level codes put thousands of items (a whole class) on one code, and a bucket
that lists each of them costs as much to verify as the class is large (past the budget: then every
query scans). When the distinct codes are at most :data:`_GROUP_SHARE` of the codes, the tables
index the distinct codes instead, each with its group of positions (ascending; a CSR of the
codes' positions by code): a distinct code is verified once, and its group pushes positions into
the top k only while they can enter (the k smallest positions of a group at one distance are its
first k), so a search reads at most k positions of a tie band, whatever its size.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
from numba import prange

from deephash._numba import njit, popcount64
from deephash.codes import to_words
from deephash.index._kernels import CHUNK, dist, gather_min
from deephash.index.flat import knn_words, range_search_words
from deephash.index.in_memory import InMemoryIndex
from deephash.index.registry import INDEXES

__all__ = ["MultiIndexHashing", "default_num_tables"]

MAX_SUBSTRING_BITS = 24  # a direct table of 2^24 offsets is 64 MiB; beyond that m grows
# Cost model in "codes scanned" (the exhaustive scan's unit of work): opening a bucket (two offset
# loads, likely cache misses) costs about _BUCKET_COST codes scanned, and verifying one candidate
# (a random access to its code, by position) about _CANDIDATE_COST (measured on 10M x 64-bit codes:
# 2-3 ns per candidate against 0.08 ns per code scanned). A query gives up once its probing cost
# exceeds _BUDGET * n, because the exhaustive scan costs about n.
_BUCKET_COST = 64
_CANDIDATE_COST = 48
_BUDGET = 1.0
_PILOT = 16  # queries tried first; if most give up, the rest are scanned directly
_GROUP_SHARE = 0.75  # tables index distinct codes when there are at most this share of codes


def default_num_tables(bits: int, n: int) -> int:
    """Number of substrings m, so that substrings have about ``log2(n) - 6`` bits (at least 4).

    The paper's ``m = bits / log2(n)`` makes buckets hold O(1) codes. Opening a bucket costs about
    as much as scanning a few dozen codes, so buckets of ~2^6 codes are cheaper overall (measured
    on 1M and 10M codes of 64-256 bits, random and clustered; rechecked on 10M x 64-bit codes with
    position-only tables: m = 3 halves the clustered search time but random queries, whose larger
    offset tables and candidates miss the caches, take 7x longer than with m = 4). At least
    ``ceil(bits / 24)`` so no table is larger than 2^24 entries, at most ``bits``.
    """
    m = round(bits / max(math.log2(max(n, 2)) - 6.0, 4.0))
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
    x: Any, starts: Any, lens: Any, bases: Any, offsets: Any, pos_lo: Any, pos_hi: Any
) -> None:  # pragma: no cover - jit
    n = x.shape[0]
    for i in prange(starts.shape[0]):
        size = 1 << lens[i]
        base = bases[i]
        cnt = np.zeros(size + 1, dtype=np.int64)
        for j in range(n):
            cnt[_substring(x, j, starts[i], lens[i]) + 1] += 1
        for v in range(size):
            cnt[v + 1] += cnt[v]
        for v in range(size + 1):
            offsets[base + v] = cnt[v]
        for j in range(n):  # ascending j: buckets list positions in increasing order
            v = _substring(x, j, starts[i], lens[i])  # recomputed: no n-sized temporary
            t = cnt[v]
            pos_lo[i, t] = j & 0xFFFF
            pos_hi[i, t] = j >> 16
            cnt[v] = t + 1


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
def _first_reached_here(
    q: Any, iq: int, xs: Any, j: int, smask: Any, i: int, r: int
) -> bool:  # pragma: no cover - jit
    # xs[j] lies in table i at substring distance r; is (r, i) the first probe to reach it?
    for t in range(smask.shape[0]):
        if t == i:
            continue
        s: Any = 0
        for w in range(xs.shape[1]):
            s += np.int64(popcount64((q[iq, w] ^ xs[j, w]) & smask[t, w]))
        if s < r or (s == r and t < i):
            return False
    return True


@njit(inline="always")
def _group(goff: Any, gpos: Any, u: int) -> tuple[Any, Any, Any]:  # pragma: no cover - jit
    """(g0, g1, first position) of table entry u: its group gpos[g0:g1] of positions when the
    tables index distinct codes (``goff`` non-empty), else the one position u."""
    if goff.shape[0] == 0:
        return u, u + 1, u
    g0 = goff[u]
    return g0, goff[u + 1], np.int64(gpos[g0])


@njit
def _scan_bucket(
    q: Any,
    iq: int,
    xs: Any,
    ps: Any,
    ph: Any,
    b0: int,
    b1: int,
    smask: Any,
    i: int,
    r: int,
    mode: int,
    radius: int,
    hd: Any,
    hp: Any,
    hsize: int,
    seg_d: Any,
    seg_p: Any,
    nout: int,
    goff: Any,
    gpos: Any,
) -> tuple[int, int]:  # pragma: no cover - jit
    """Verify the codes xs[b0:b1] (one bucket of table i, substring distance r) against q[iq];
    each stands for its group of positions (see :func:`_group`).

    mode 0: push into the top-k heap; mode 1: count those with d < radius; mode 2: also write
    them to seg_d/seg_p. Returns (hsize, nout).
    """
    k = hd.shape[0]
    grouped = goff.shape[0] > 0
    for c0 in range(b0, b1, CHUNK):
        c1 = min(c0 + CHUNK, b1)
        lim = (hd[0] if hsize == k else 1 << 30) if mode == 0 else radius - 1
        if gather_min(q, iq, xs, ps, ph, c0, c1) > lim:
            continue
        for t in range(c0, c1):
            u = np.int64(ps[t]) | (np.int64(ph[t]) << 16)
            d = dist(q, iq, xs, u)
            g0, g1, j = _group(goff, gpos, u)
            if mode == 0:
                if hsize == k and (d > hd[0] or (d == hd[0] and j > hp[0])):
                    continue
                if _first_reached_here(q, iq, xs, u, smask, i, r):
                    for g in range(g0, g1):  # ascending: stop at the first that cannot enter
                        j = np.int64(gpos[g]) if grouped else g
                        if hsize == k and (d > hd[0] or (d == hd[0] and j > hp[0])):
                            break
                        hsize = _heap_push(hd, hp, hsize, d, j)
            elif d < radius and _first_reached_here(q, iq, xs, u, smask, i, r):
                for g in range(g0, g1):
                    if mode == 2:
                        seg_d[nout] = d
                        seg_p[nout] = np.int64(gpos[g]) if grouped else g
                    nout += 1
    return hsize, nout


@njit
def _mih_queries(
    q: Any,
    first: int,
    last: int,
    k: int,
    radius: int,
    mode: int,
    tables: Any,
    budget: int,
    out_d: Any,
    out_p: Any,
    lims: Any,
    gave_up: Any,
) -> None:  # pragma: no cover - jit
    """Queries first .. last - 1 of q, one after the other (no threads). mode 0: k-NN into
    out_d/out_p (nq, k); mode 1: per-query counts of d < radius into lims[1:]; mode 2: fill
    results into out_d[0]/out_p[0] at lims, sorted by (d, position).
    tables: (starts, lens, bases, offsets, pos_lo, pos_hi, words, smask, goff, gpos) as built
    by :meth:`MultiIndexHashing._build`; ``words`` are the codes the tables index: every code
    (``goff`` empty), or the distinct codes, code u standing for the positions
    gpos[goff[u]:goff[u + 1]].

    A query whose probing cost exceeds ``budget`` sets ``gave_up[iq]`` and writes nothing; mode 2
    skips the queries that gave up in mode 1.
    """
    starts, lens, bases, offsets, pos_lo, pos_hi, words, smask, goff, gpos = tables
    n = gpos.shape[0] if goff.shape[0] > 0 else words.shape[0]  # positions
    m = starts.shape[0]
    maxlen = 0
    for i in range(m):
        maxlen = max(maxlen, lens[i])
    hd = np.empty(max(k, 1), dtype=np.int32)
    hp = np.empty(max(k, 1), dtype=np.int64)
    qsubs = np.empty(m, dtype=np.int64)
    seg_d = np.empty(1, dtype=np.int32)
    seg_p = np.empty(1, dtype=np.int64)
    for iq in range(first, last):
        if mode == 2:
            if gave_up[iq]:
                continue
            seg_d = np.empty(lims[iq + 1] - lims[iq], dtype=np.int32)
            seg_p = np.empty(lims[iq + 1] - lims[iq], dtype=np.int64)
        for i in range(m):
            qsubs[i] = _substring(q, iq, starts[i], lens[i])
        hsize = 0
        nout = 0
        cost = 0
        over = False
        done = False
        rmax = maxlen if mode == 0 else min(maxlen, (radius - 1) // m)
        for r in range(rmax + 1):
            for i in range(m):
                if r <= lens[i]:
                    xs = words
                    ps = pos_lo[i]
                    ph = pos_hi[i]
                    base = bases[i]
                    limit = 1 << lens[i]
                    mask = (1 << r) - 1
                    while mask < limit:  # every substring value at distance exactly r
                        v = qsubs[i] ^ mask
                        b0 = offsets[base + v]
                        b1 = offsets[base + v + 1]
                        cost += _BUCKET_COST + _CANDIDATE_COST * (b1 - b0)
                        if cost > budget:
                            over = True
                            break
                        if b1 > b0:
                            hsize, nout = _scan_bucket(
                                q, iq, xs, ps, ph, b0, b1, smask, i, r, mode, radius, hd, hp,
                                hsize, seg_d, seg_p, nout, goff, gpos,
                            )  # fmt: skip
                        if mask == 0:
                            break
                        # Gosper's hack: next integer with the same number of set bits
                        low = mask & -mask
                        nxt = mask + low
                        mask = (((nxt ^ mask) >> 2) // low) | nxt
                if over:
                    break
                if mode == 0 and hsize == k and hd[0] <= m * r + i:
                    done = True
                    break
            if done or over:
                break
        if over:
            gave_up[iq] = True
            continue
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
                key[t] = seg_d[t] * np.int64(n + 1) + seg_p[t]
            order = np.argsort(key)
            o = lims[iq]
            for t in range(nout):
                out_d[0, o + t] = seg_d[order[t]]
                out_p[0, o + t] = seg_p[order[t]]


@njit(parallel=True)
def _mih_query(
    q: Any,
    k: int,
    radius: int,
    mode: int,
    tables: Any,
    budget: int,
    nchunks: int,
    out_d: Any,
    out_p: Any,
    lims: Any,
    gave_up: Any,
) -> None:  # pragma: no cover - jit
    """:func:`_mih_queries` of every query of q, in ``nchunks`` chunks run by numba's threads."""
    nq = q.shape[0]
    per = (nq + nchunks - 1) // nchunks
    for c in prange(nchunks):
        last = min((c + 1) * per, nq)
        _mih_queries(q, c * per, last, k, radius, mode, tables, budget, out_d, out_p, lims, gave_up)


def distinct_groups(words: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The codes for the tables to index: (words uint64 (n, W), empty int64 (0,), empty int64
    (0,)) when most codes are distinct; else (the distinct codes uint64 (u, W), goff int64 (u + 1,),
    gpos int64 (n,)) with the positions of distinct code i in gpos[goff[i]:goff[i + 1]],
    ascending."""
    none = np.zeros(0, dtype=np.int64)
    if len(words) < 2:
        return words, none, none
    if words.shape[1] == 1:
        uniq, inverse = np.unique(words[:, 0], return_inverse=True)
        uniq = uniq[:, None]
    else:
        uniq, inverse = np.unique(words, axis=0, return_inverse=True)
    if len(uniq) > _GROUP_SHARE * len(words):
        return words, none, none
    inverse = inverse.reshape(-1)
    gpos = np.argsort(inverse, kind="stable").astype(np.int64)  # ascending within a group
    goff = np.zeros(len(uniq) + 1, dtype=np.int64)
    np.cumsum(np.bincount(inverse, minlength=len(uniq)), out=goff[1:])
    return np.ascontiguousarray(uniq), goff, gpos


@INDEXES.register("mih")
class MultiIndexHashing(InMemoryIndex):
    """Exact sub-linear k-NN and range search in Hamming space by multi-index hashing.

    bits: code length. num_tables: number of substrings m; ``None`` picks
    :func:`default_num_tables` (``bits / log2(n)``) from the number of distinct codes at
    (re)build time. Tables are built lazily on the first search after ``add``. Memory per code:
    the code (padded to 64-bit words when ``bits`` is not a multiple of 64), plus in each of the
    ``m`` tables its position (3 bytes up to 2^24 codes, 4 beyond), plus ``m`` offset tables of
    ``2^(bits/m)`` int32 entries (ids cost nothing while they are consecutive). When the distinct
    codes are at most 3/4 of the codes, the tables hold the distinct codes (a copy of each) and a
    group of positions per distinct code (8 bytes per code plus 8 per distinct code) instead. Queries whose neighbours are too
    far for probing to pay off are answered by an exhaustive scan, so results are always exact.
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
        """The number of substrings in use for the current database (builds the tables)."""
        return len(self._build()[1])

    def _on_change(self, appended_from: int | None) -> None:
        self._tables = None

    def _options(self) -> dict[str, Any]:
        return {"num_tables": self.num_tables}

    def _build(self) -> tuple[np.ndarray, ...]:
        if self._tables is None:
            words = to_words(self.codes_)
            table_words, goff, gpos = distinct_groups(words)
            m = self.num_tables or default_num_tables(self.bits, len(table_words))
            lens = np.array([self.bits // m + (i < self.bits % m) for i in range(m)], np.int64)
            starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
            sizes = (1 << lens) + 1
            bases = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
            pos_dtype = np.int32 if self.ntotal < 2**31 else np.int64
            offsets = np.empty(int(sizes.sum()), dtype=pos_dtype)
            # positions split in a low uint16 and a high part: 3 bytes per entry up to 2^24 codes,
            # 4 up to 2^32
            n = len(table_words)
            hi_dtype = np.uint8 if n <= 1 << 24 else np.uint16 if n <= 1 << 32 else np.uint32
            pos_lo = np.empty((m, n), dtype=np.uint16)
            pos_hi = np.empty((m, n), dtype=hi_dtype)
            _build_tables(table_words, starts, lens, bases, offsets, pos_lo, pos_hi)
            # smask[i]: the bits of substring i, as words
            bit = np.arange(words.shape[1] * 64)
            smask = np.zeros((m, words.shape[1]), dtype=np.uint64)
            for i in range(m):
                sel = (bit >= starts[i]) & (bit < starts[i] + lens[i])
                smask[i] = np.packbits(sel, bitorder="little").view("<u8")
            self._tables = (words, starts, lens, bases, offsets, pos_lo, pos_hi, smask,
                            table_words, goff, gpos)  # fmt: skip
        return self._tables

    def _run(
        self,
        qw: np.ndarray,
        k: int,
        radius: int,
        mode: int,
        out_d: np.ndarray,
        out_p: np.ndarray,
        lims: np.ndarray,
        gave_up: np.ndarray,
    ) -> None:
        """Run the probing kernel (modes as in ``_mih_query``); sets ``gave_up`` per query."""
        _, starts, lens, bases, offsets, pos_lo, pos_hi, smask, words, goff, gpos = self._build()
        nchunks = int(max(1, min(qw.shape[0], 4 * numba.get_num_threads())))
        budget = int(_BUDGET * self.ntotal) + 64 * _BUCKET_COST
        tables = (starts, lens, bases, offsets, pos_lo, pos_hi, words, smask, goff, gpos)
        if nchunks == 1:  # one query: starting numba's threads costs more than they save
            _mih_queries(qw, 0, qw.shape[0], k, radius, mode, tables, budget, out_d, out_p, lims,
                         gave_up)  # fmt: skip
        else:
            _mih_query(qw, k, radius, mode, tables, budget, nchunks, out_d, out_p, lims, gave_up)

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        words = self._build()[0]
        qw = to_words(queries)
        nq = qw.shape[0]
        out_d = np.empty((nq, k), dtype=np.int32)
        out_p = np.empty((nq, k), dtype=np.int64)
        gave_up = np.zeros(nq, dtype=np.bool_)
        lims = np.zeros(1, dtype=np.int64)
        # Try a first batch; if most of it gives up, probing does not pay off on this database.
        pilot = nq if nq <= 2 * _PILOT else _PILOT
        self._run(qw[:pilot], k, 0, 0, out_d[:pilot], out_p[:pilot], lims, gave_up[:pilot])
        if pilot < nq:
            if gave_up[:pilot].mean() > 0.5:
                gave_up[pilot:] = True
            else:
                self._run(qw[pilot:], k, 0, 0, out_d[pilot:], out_p[pilot:], lims, gave_up[pilot:])
        scan = np.flatnonzero(gave_up)
        if scan.size:
            out_d[scan], out_p[scan] = knn_words(qw[scan], words, k, self.bits)
        return out_d, out_p

    def _range_search(
        self, queries: np.ndarray, radius: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        words = self._build()[0]
        qw = to_words(queries)
        nq = qw.shape[0]
        lims = np.zeros(nq + 1, dtype=np.int64)
        gave_up = np.zeros(nq, dtype=np.bool_)
        dummy_d = np.empty((1, 1), dtype=np.int32)
        dummy_p = np.empty((1, 1), dtype=np.int64)
        self._run(qw, 0, radius, 1, dummy_d, dummy_p, lims, gave_up)
        scan = np.flatnonzero(gave_up)
        if scan.size:
            s_lims, s_d, s_p = range_search_words(qw[scan], words, radius)
            lims[scan + 1] = np.diff(s_lims)
        np.cumsum(lims, out=lims)
        out_d = np.empty((1, int(lims[-1])), dtype=np.int32)
        out_p = np.empty((1, int(lims[-1])), dtype=np.int64)
        self._run(qw, 0, radius, 2, out_d, out_p, lims, gave_up)
        for t, iq in enumerate(scan):
            out_d[0, lims[iq] : lims[iq + 1]] = s_d[s_lims[t] : s_lims[t + 1]]
            out_p[0, lims[iq] : lims[iq + 1]] = s_p[s_lims[t] : s_lims[t + 1]]
        return lims, out_d[0], out_p[0]
