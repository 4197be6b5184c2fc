"""Numba kernel of the re-ranking stage: squared distances from each query's descriptor to the
descriptors of its candidates, gathered by row (no (nq, k', D) copy is made)."""

from __future__ import annotations

from typing import Any

import numpy as np

from deephash._numba import njit


@njit(fastmath={"reassoc", "nsz"})
def candidate_sq_distances(queries: Any, database: Any, rows: Any) -> Any:  # pragma: no cover - jit
    """out[i, j] = sum_d (queries[i, d] - database[rows[i, j], d])^2, +inf where rows[i, j] < 0.

    queries float32 (nq, D), database float32 (n, D), rows int64 (nq, k'); returns float32
    (nq, k'). The sum over d may be reassociated (vector lanes), the same way for every pair, so
    the result does not depend on the candidate's position or the query batch, and an identical
    vector is at exactly 0 (every difference is 0).
    """
    nq, kp = rows.shape
    dim = queries.shape[1]
    out = np.empty((nq, kp), dtype=np.float32)
    for i in range(nq):
        for j in range(kp):
            r = rows[i, j]
            if r < 0:
                out[i, j] = np.inf
                continue
            acc = np.float32(0.0)
            for d in range(dim):
                diff = queries[i, d] - database[r, d]
                acc += diff * diff
            out[i, j] = acc
    return out
