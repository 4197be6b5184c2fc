"""Per-query accumulation shared by the Hamming and float kernels: one relevant item at a time."""

from __future__ import annotations

import numpy as np

from deephash._numba import njit


@njit(inline="always")
def reset_query(  # pragma: no cover - compiled
    q: int,
    ap_sum: np.ndarray,
    ap_hits: np.ndarray,
    cut_hits: np.ndarray,
    r_ap_sum: np.ndarray,
    r_hits: np.ndarray,
) -> None:
    """Zero query q's rows of the outputs (see ``hamming_rank_stats``)."""
    ap_sum[q, :] = 0.0
    ap_hits[q, :] = 0
    cut_hits[q, :] = 0
    r_ap_sum[q] = 0.0
    r_hits[q] = 0


@njit(inline="always")
def add_relevant(  # pragma: no cover - compiled
    q: int,
    pos: int,
    prec: float,
    ap_ks: np.ndarray,
    cutoffs: np.ndarray,
    ap_sum: np.ndarray,
    ap_hits: np.ndarray,
    cut_hits: np.ndarray,
) -> None:
    """Count a relevant item of query q at 1-based ranking position ``pos`` whose precision
    (rank among the relevant items / pos) is ``prec``, at every AP depth and cut-off it lies in."""
    for t in range(ap_ks.shape[0]):
        if pos <= ap_ks[t]:
            ap_sum[q, t] += prec
            ap_hits[q, t] += 1
    for t in range(cutoffs.shape[0]):
        if pos <= cutoffs[t]:
            cut_hits[q, t] += 1


@njit(inline="always")
def add_within_r(  # pragma: no cover - compiled
    q: int, pos: int, prec: float, n_rel: int, r_ap_sum: np.ndarray, r_hits: np.ndarray
) -> None:
    """Count a relevant item of query q at 1-based position ``pos`` with precision ``prec`` for
    the metrics at the query's own depth R = ``n_rel`` (MAP@R, R-precision) if ``pos <= R``."""
    if pos <= n_rel:
        r_ap_sum[q] += prec
        r_hits[q] += 1
