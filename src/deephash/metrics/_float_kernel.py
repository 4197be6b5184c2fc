"""Numba kernel: exact float-distance ranking statistics, bit for bit the same on any CPU.

Why not a matrix product: a BLAS GEMM picks its summation order (blocking, vector width, fused
multiply-add) by CPU model, matrix shape and a row's position inside its block, so two identical
database rows could get distances that differ in the last bits; the "tie" between them, and so the
ranking and mAP, then depended on the processor and on how the queries were chunked (seen on AMD
EPYC). Here every distance is one sequential loop over the dimensions in the input precision,
without fused multiply-add or reassociation (numba compiles without fast-math, and LLVM does not
fuse a separate multiply and add), so a distance depends only on the two rows it compares:
identical rows get identical distances on any IEEE-754 CPU, at any position, for any chunking or
thread count. The loops vectorise across database items (several items' sums advance together,
each in its own sequential order), and a block of queries shares each block of the database while
it is in cache, which is what makes it fast without a GEMM.

The ranked quantity (the *key*) is the squared Euclidean distance, or minus the cosine similarity
of the rows normalised by their float64 norms; both rank exactly as the distances the metrics
document. Keys map to unsigned integers of the same order (:func:`deephash._numba.float_order_key`)
and a least-significant-digit radix sort, which is stable, orders the database indices: ties stay
in database order without a tie-fixing pass, in O(n) per query. Digits on which every key agrees
are skipped, so float32 keys take at most three passes and often fewer.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from deephash._numba import float_order_key, njit
from deephash.metrics._accumulate import add_relevant, reset_query

RADIX_BITS = 11
_RADIX = 1 << RADIX_BITS
_DIGIT_MASK = np.uint64(_RADIX - 1)


@njit
def normalize_rows(x: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """Rows of x (n, d) divided by their Euclidean norms, in x's dtype.

    The norm is a sequential float64 sum (no overflow for large float32 values); a zero row stays
    zero. Each output row depends only on its input row.
    """
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        s = 0.0
        for k in range(x.shape[1]):
            v = np.float64(x[i, k])
            s += v * v
        nrm = max(np.sqrt(s), 1e-300)
        for k in range(x.shape[1]):
            out[i, k] = x[i, k] / nrm
    return out


def tile_database(database: np.ndarray, db_block: int) -> np.ndarray:
    """The database (n, d) as zero-padded tiles (ceil(n / db_block), d, db_block), each tile the
    transpose of ``db_block`` consecutive rows, contiguous: the layout the key loops stream."""
    n, d = database.shape
    nb = -(-n // db_block)
    padded = np.zeros((nb * db_block, d), dtype=database.dtype)
    padded[:n] = database
    return np.ascontiguousarray(padded.reshape(nb, db_block, d).transpose(0, 2, 1))


@njit
def _key_tile(  # pragma: no cover - compiled
    q: np.ndarray, tile: np.ndarray, cosine: bool, lo: int, hi: int, out: np.ndarray
) -> None:
    """Keys of queries lo..hi against one database tile (d, m) into out (hi - lo, m).

    Four queries share each load of a database value; every key is still its own sequential sum
    over the dimensions, so the grouping changes no bit.
    """
    d, m = tile.shape
    a0 = np.empty(m, dtype=q.dtype)
    a1 = np.empty(m, dtype=q.dtype)
    a2 = np.empty(m, dtype=q.dtype)
    a3 = np.empty(m, dtype=q.dtype)
    for i in range(lo, hi, 4):
        # A last group of fewer than four queries repeats its first query in the spare lanes.
        i1 = min(i + 1, hi - 1)
        i2 = min(i + 2, hi - 1)
        i3 = min(i + 3, hi - 1)
        a0[:] = 0
        a1[:] = 0
        a2[:] = 0
        a3[:] = 0
        for k in range(d):
            x = tile[k]
            c0, c1, c2, c3 = q[i, k], q[i1, k], q[i2, k], q[i3, k]
            if cosine:
                for j in range(m):
                    v = x[j]
                    a0[j] += c0 * v
                    a1[j] += c1 * v
                    a2[j] += c2 * v
                    a3[j] += c3 * v
            else:
                for j in range(m):
                    v = x[j]
                    t0 = c0 - v
                    t1 = c1 - v
                    t2 = c2 - v
                    t3 = c3 - v
                    a0[j] += t0 * t0
                    a1[j] += t1 * t1
                    a2[j] += t2 * t2
                    a3[j] += t3 * t3
        for r, a in ((i, a0), (i1, a1), (i2, a2), (i3, a3)):
            o = out[r - lo]
            if cosine:
                for j in range(m):
                    o[j] = -a[j]
            else:
                o[:] = a


@njit(parallel=True)
def float_keys(
    q: np.ndarray, tiles: np.ndarray, n: int, cosine: bool
) -> np.ndarray:  # pragma: no cover - compiled
    """The ranked keys of every (query, database item) pair, (nq, n) in the input dtype.

    q: (nq, d) rows (normalised by the caller for cosine); tiles: the database from
    :func:`tile_database`, n its number of rows. Key = squared Euclidean distance, or minus the
    dot product for cosine. The tile width changes the speed only, never a value.
    """
    nq = q.shape[0]
    nb, _, m = tiles.shape
    out = np.empty((nq, nb * m), dtype=q.dtype)
    for b in prange(nb):
        _key_tile(q, tiles[b], cosine, 0, nq, out[:, b * m : (b + 1) * m])
    return out[:, :n]


@njit
def _prefix(h: np.ndarray) -> None:  # pragma: no cover - compiled
    """Counts -> exclusive prefix sums, in place."""
    acc = 0
    for b in range(h.shape[0]):
        c = h[b]
        h[b] = acc
        acc += c


@njit
def _single_bucket(h: np.ndarray, n: int) -> bool:  # pragma: no cover - compiled
    """True when one bucket holds every key: that digit leaves the order as it is."""
    for b in range(h.shape[0]):
        if h[b] != 0:
            return h[b] == n
    return False


@njit
def _rank_packed(  # pragma: no cover - compiled
    row: np.ndarray, a: np.ndarray, b: np.ndarray, hist: np.ndarray, order: np.ndarray
) -> None:
    """order[:] = indices of row (float32 keys, n < 2**32) by (key, index).

    Each item travels as one uint64, key in the high half and index in the low half, so a pass
    moves one word; LSD passes over the key digits only, since the index order is the start.
    a/b: uint64 (n,) scratch; hist: int64 (>= 3, 2**RADIX_BITS).
    """
    n = row.shape[0]
    hist[:3, :] = 0
    for j in range(n):
        u = (float_order_key(row[j]) << np.uint64(32)) | np.uint64(j)
        a[j] = u
        for p in range(3):
            hist[p, np.int64((u >> np.uint64(32 + p * RADIX_BITS)) & _DIGIT_MASK)] += 1
    src, dst = a, b
    for p in range(3):
        h = hist[p]
        if _single_bucket(h, n):
            continue
        _prefix(h)
        shift = np.uint64(32 + p * RADIX_BITS)
        for i in range(n):
            u = src[i]
            d = np.int64((u >> shift) & _DIGIT_MASK)
            pos = h[d]
            h[d] = pos + 1
            dst[pos] = u
        src, dst = dst, src
    for i in range(n):
        order[i] = np.int32(src[i] & np.uint64(0xFFFFFFFF))


@njit
def _rank_wide(  # pragma: no cover - compiled
    row: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    hist: np.ndarray,
    order: np.ndarray,
    order2: np.ndarray,
) -> None:
    """order[:] = indices of row (float64 keys) by (key, index): LSD radix sort of 64-bit keys
    carrying the indices beside them. a/b: uint64 (n,), order2: int32 (n,) scratch; hist:
    int64 (>= 6, 2**RADIX_BITS)."""
    n = row.shape[0]
    n_digits = (64 + RADIX_BITS - 1) // RADIX_BITS
    hist[:n_digits, :] = 0
    for j in range(n):
        u = float_order_key(row[j])
        a[j] = u
        order[j] = j
        for p in range(n_digits):
            hist[p, np.int64((u >> np.uint64(p * RADIX_BITS)) & _DIGIT_MASK)] += 1
    src_k, dst_k, src_i, dst_i = a, b, order, order2
    for p in range(n_digits):
        h = hist[p]
        if _single_bucket(h, n):
            continue
        _prefix(h)
        shift = np.uint64(p * RADIX_BITS)
        for i in range(n):
            u = src_k[i]
            d = np.int64((u >> shift) & _DIGIT_MASK)
            pos = h[d]
            h[d] = pos + 1
            dst_k[pos] = u
            dst_i[pos] = src_i[i]
        src_k, dst_k = dst_k, src_k
        src_i, dst_i = dst_i, src_i
    if src_i is not order:
        order[:] = src_i


@njit
def rank_row(row: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """Indices of row (n,) float32/float64 by (value, index): a stable argsort, int32 (n,)."""
    n = row.shape[0]
    order = np.empty(n, dtype=np.int32)
    a = np.empty(n, dtype=np.uint64)
    b = np.empty(n, dtype=np.uint64)
    hist = np.empty((6, _RADIX), dtype=np.int64)
    if row.itemsize == 4:
        _rank_packed(row, a, b, hist, order)
    else:
        _rank_wide(row, a, b, hist, order, np.empty(n, dtype=np.int32))
    return order


@njit(parallel=True)
def float_rank_stats(  # pragma: no cover - compiled
    q: np.ndarray,
    tiles: np.ndarray,
    n: int,
    exclude: np.ndarray,
    cosine: bool,
    q_lab: np.ndarray,
    db_lab: np.ndarray,
    q_mask: np.ndarray,
    db_mask: np.ndarray,
    multilabel: bool,
    ap_ks: np.ndarray,
    cutoffs: np.ndarray,
    ap_sum: np.ndarray,
    ap_hits: np.ndarray,
    n_relevant: np.ndarray,
    cut_hits: np.ndarray,
    topk: np.ndarray,
    query_block: int,
) -> None:
    """Fill the per-query outputs for the queries q (see ``hamming_rank_stats``).

    q: (c, d) float32/float64 query rows; tiles: the database from :func:`tile_database` (same
    dtype; both normalised by the caller for cosine), n its number of rows. exclude: int64 (c,)
    the database index left out of each query's ranking (-1: none); the items after it move up
    one position. Labels and outputs are as for the Hamming kernel. ``query_block`` queries share each database tile while it is
    in cache; it changes no result.
    """
    nq = q.shape[0]
    nb, _, m = tiles.shape
    t_top = topk.shape[1]
    packed = q.itemsize == 4
    for blk in prange((nq + query_block - 1) // query_block):
        lo = blk * query_block
        hi = min(nq, lo + query_block)
        rows = np.empty((hi - lo, nb * m), dtype=q.dtype)
        a = np.empty(n, dtype=np.uint64)
        b = np.empty(n, dtype=np.uint64)
        order = np.empty(n, dtype=np.int32)
        order2 = np.empty(n, dtype=np.int32)
        hist = np.empty((6, _RADIX), dtype=np.int64)
        for t in range(nb):
            _key_tile(q, tiles[t], cosine, lo, hi, rows[:, t * m : (t + 1) * m])
        for qi in range(lo, hi):
            if packed:
                _rank_packed(rows[qi - lo, :n], a, b, hist, order)
            else:
                _rank_wide(rows[qi - lo, :n], a, b, hist, order, order2)
            reset_query(qi, ap_sum, ap_hits, cut_hits)
            hits = 0
            ex = exclude[qi]
            p = 0  # 0-based position among the ranked items
            for s in range(n):
                j = order[s]
                if j == ex:
                    continue
                if p < t_top:
                    topk[qi, p] = j
                if multilabel:
                    r = False
                    for w in range(q_mask.shape[1]):
                        if q_mask[qi, w] & db_mask[j, w]:
                            r = True
                            break
                else:
                    r = q_lab[qi] == db_lab[j]
                if r:
                    hits += 1
                    add_relevant(
                        qi, p + 1, hits / (p + 1), ap_ks, cutoffs, ap_sum, ap_hits, cut_hits
                    )
                p += 1
            n_relevant[qi] = hits
