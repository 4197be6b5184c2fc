"""Numba kernel of the two-source ranking: one pass per query over the union of its code and
descriptor candidates (at most a few dozen), instead of numpy sorts and gathers on tiny arrays.

For each query it merges the two candidate id lists (sorted, repeats and -1 dropped), finds each
candidate's row by binary search in the ascending ids, measures both Hamming distances on the
packed rows, and orders the candidates by the key of
:func:`deephash.index.binary_rerank.rank_union` with a stable sort over ids already in
ascending order (so ties go to the smaller id).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deephash._numba import njit, popcount64


@njit(inline="always")
def _row_distance(q: Any, iq: int, x: Any, r: int) -> int:  # pragma: no cover - jit
    """Hamming distance between q[iq] and x[r], packed rows of any unsigned integer type."""
    d = 0
    for w in range(x.shape[1]):
        d += popcount64(np.uint64(q[iq, w] ^ x[r, w]))
    return d


@njit(inline="always")
def _merged_ids(a: Any, b: Any, out: Any) -> int:  # pragma: no cover - jit
    """The distinct ids >= 0 of a and b (int64 (w,) each) into out, ascending; returns how many."""
    both = np.sort(np.concatenate((a, b)))
    m = 0
    for t in range(both.shape[0]):
        v = both[t]
        if v >= 0 and (m == 0 or out[m - 1] != v):
            out[m] = v
            m += 1
    return m


@njit
def rank_union_kernel(
    q: Any,
    qd: Any,
    ids: Any,
    codes: Any,
    descs: Any,
    code_ids: Any,
    desc_ids: Any,
    k: int,
    descriptor_bits: int,
    radius: int,
    copy_radius: int,
) -> tuple[Any, Any, Any]:  # pragma: no cover - jit
    """The k best of each query's candidates: (scores float32 (nq, k) ``1 - 2 d / descriptor_bits``
    of the descriptors, code distances int32 (nq, k), ids int64 (nq, k)), NaN / -1 / -1 past the
    last.

    q (nq, W) and qd (nq, Wd): the queries' packed codes and descriptors; ids int64 (n,)
    ascending, codes (n, W) and descs (n, Wd) the stored rows aligned with them (same integer
    type as the queries); code_ids (nq, kc) and desc_ids (nq, kd) int64 the candidates, -1 for
    none (an id not in ``ids`` is skipped). radius: only code distances <= radius (-1: all).
    copy_radius: candidates within it rank first by (descriptor d, code d, id), the others next
    by (code d, descriptor d, id); ``descriptor_bits`` makes every candidate a copy.
    """
    nq = q.shape[0]
    n = ids.shape[0]
    scores = np.full((nq, k), np.nan, dtype=np.float32)
    dist = np.full((nq, k), -1, dtype=np.int32)
    out_ids = np.full((nq, k), -1, dtype=np.int64)
    width = code_ids.shape[1] + desc_ids.shape[1]
    cand = np.empty(width, dtype=np.int64)
    keys = np.empty(width, dtype=np.int64)
    d_code = np.empty(width, dtype=np.int64)
    d_desc = np.empty(width, dtype=np.int64)
    base = np.int64(max(q.shape[1], qd.shape[1]) * 64 + 1)  # > any distance
    for i in range(nq):
        m = _merged_ids(code_ids[i], desc_ids[i], cand)
        c = 0
        for t in range(m):
            r = np.searchsorted(ids, cand[t])
            if r >= n or ids[r] != cand[t]:
                continue
            dc = _row_distance(q, i, codes, r)
            if radius >= 0 and dc > radius:
                continue
            dd = _row_distance(qd, i, descs, r)
            if dd <= copy_radius:  # copies: (0, dd, dc)
                keys[c] = dd * base + dc
            else:  # the others: (1, dc, dd)
                keys[c] = (base + dc) * base + dd
            cand[c], d_code[c], d_desc[c] = cand[t], dc, dd
            c += 1
        order = np.argsort(keys[:c], kind="mergesort")  # stable: ties keep ascending ids
        for t in range(min(k, c)):
            o = order[t]
            scores[i, t] = np.float32(1.0 - 2.0 * d_desc[o] / descriptor_bits)
            dist[i, t] = d_code[o]
            out_ids[i, t] = cand[o]
    return scores, dist, out_ids
