"""Numba kernels shared by the Hamming indexes: distances and the vectorised chunk minimum.

The scans are built around :func:`chunk_min`: the smallest Hamming distance from one query to a
run of consecutive database codes. Its loop has no branch and no store, so LLVM vectorises it
(``vpopcntq`` on AVX-512 VPOPCNTDQ hosts, a ``pshufb`` popcount elsewhere), specialised for codes of
1, 2 and 4 words. A scan compares the chunk minimum against the current k-th best distance and only
revisits the (rare) chunks that hold a candidate, so the common case costs a few vector
instructions per code instead of a compare-and-branch per code.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deephash._numba import njit, popcount64

CHUNK = 256  # codes per chunk: long enough to amortise the check, short enough to rescan cheaply


@njit(inline="always")
def dist(q: Any, iq: int, x: Any, j: int) -> int:  # pragma: no cover - jit
    """Hamming distance between query row ``iq`` of q and row ``j`` of x (uint64 words)."""
    d: Any = 0
    for w in range(x.shape[1]):
        d += np.int64(popcount64(q[iq, w] ^ x[j, w]))
    return d


@njit(inline="always")
def chunk_min(q: Any, iq: int, x: Any, c0: int, c1: int) -> int:  # pragma: no cover - jit
    """min over j in [c0, c1) of the distance between q[iq] and x[j]; ``1 << 30`` if empty."""
    mn: Any = 1 << 30
    nw = x.shape[1]
    if nw == 1:
        a0 = q[iq, 0]
        for j in range(np.uint64(c0), np.uint64(c1)):
            mn = min(mn, np.int64(popcount64(a0 ^ x[j, 0])))
    elif nw == 2:
        a0, a1 = q[iq, 0], q[iq, 1]
        for j in range(np.uint64(c0), np.uint64(c1)):
            d = np.int64(popcount64(a0 ^ x[j, 0])) + np.int64(popcount64(a1 ^ x[j, 1]))
            mn = min(mn, d)
    elif nw == 4:
        a0, a1, a2, a3 = q[iq, 0], q[iq, 1], q[iq, 2], q[iq, 3]
        for j in range(np.uint64(c0), np.uint64(c1)):
            d = (
                np.int64(popcount64(a0 ^ x[j, 0]))
                + np.int64(popcount64(a1 ^ x[j, 1]))
                + np.int64(popcount64(a2 ^ x[j, 2]))
                + np.int64(popcount64(a3 ^ x[j, 3]))
            )
            mn = min(mn, d)
    else:
        for j in range(np.uint64(c0), np.uint64(c1)):
            dj: Any = 0
            for w in range(nw):
                dj += np.int64(popcount64(q[iq, w] ^ x[j, w]))
            mn = min(mn, dj)
    return mn


@njit(inline="always")
def chunk_min4(
    q: Any, iq: int, x: Any, c0: int, c1: int
) -> tuple[int, int, int, int]:  # pragma: no cover - jit
    """:func:`chunk_min` of the queries iq .. iq + 3 in one pass over x[c0:c1] (each code is
    loaded once for four queries)."""
    nw = x.shape[1]
    if nw == 1:
        m0: Any = 1 << 30
        m1: Any = 1 << 30
        m2: Any = 1 << 30
        m3: Any = 1 << 30
        a0, a1, a2, a3 = q[iq, 0], q[iq + 1, 0], q[iq + 2, 0], q[iq + 3, 0]
        for j in range(np.uint64(c0), np.uint64(c1)):
            v = x[j, 0]
            m0 = min(m0, np.int64(popcount64(a0 ^ v)))
            m1 = min(m1, np.int64(popcount64(a1 ^ v)))
            m2 = min(m2, np.int64(popcount64(a2 ^ v)))
            m3 = min(m3, np.int64(popcount64(a3 ^ v)))
        return m0, m1, m2, m3
    return (
        chunk_min(q, iq, x, c0, c1),
        chunk_min(q, iq + 1, x, c0, c1),
        chunk_min(q, iq + 2, x, c0, c1),
        chunk_min(q, iq + 3, x, c0, c1),
    )


@njit(inline="always")
def gather_min(
    q: Any, iq: int, x: Any, lo: Any, hi: Any, c0: int, c1: int
) -> int:  # pragma: no cover - jit
    """min over t in [c0, c1) of the distance between q[iq] and x[p_t], p_t = lo[t] + hi[t] * 2^16
    (positions stored as a low uint16 and a high part); ``1 << 30`` if empty."""
    mn: Any = 1 << 30
    nw = x.shape[1]
    if nw == 1:
        a0 = q[iq, 0]
        for t in range(np.uint64(c0), np.uint64(c1)):
            j = np.uint64(lo[t]) | (np.uint64(hi[t]) << np.uint64(16))
            mn = min(mn, np.int64(popcount64(a0 ^ x[j, 0])))
    else:
        for t in range(np.uint64(c0), np.uint64(c1)):
            j = np.uint64(lo[t]) | (np.uint64(hi[t]) << np.uint64(16))
            dj: Any = 0
            for w in range(nw):
                dj += np.int64(popcount64(q[iq, w] ^ x[j, w]))
            mn = min(mn, dj)
    return mn
