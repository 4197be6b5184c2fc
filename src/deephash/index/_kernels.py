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

CHUNK = 128  # codes per chunk: long enough to amortise the check, short enough to rescan cheaply


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
