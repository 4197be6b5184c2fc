"""Numba CPU kernels for enumerating triplets by a gap window (private).

For every anchor ``a``, positive ``p`` (same label, ``p != a``) and negative ``n`` (other label),
the triplet is kept when ``lo < d(a, n) - d(a, p) < hi``. One fused pass counts, a second writes,
so no ``(pairs, B)`` boolean slab or ``nonzero`` is materialized. The float32 subtraction and
comparisons are the ones torch performs, so the kept set is identical to the torch path.
"""

from __future__ import annotations

import numpy as np

from deephash._numba import njit


@njit
def count_window(
    dist: np.ndarray, labels: np.ndarray, lo: float, hi: float
) -> np.ndarray:  # pragma: no cover - compiled
    b = dist.shape[0]
    counts = np.zeros(b, dtype=np.int64)
    for a in range(b):
        c = 0
        for p in range(b):
            if p == a or labels[p] != labels[a]:
                continue
            dap = dist[a, p]
            for n in range(b):
                if labels[n] == labels[a]:
                    continue
                gap = dist[a, n] - dap
                if gap > lo and gap < hi:
                    c += 1
        counts[a] = c
    return counts


@njit
def fill_window(
    dist: np.ndarray,
    labels: np.ndarray,
    lo: float,
    hi: float,
    total: int,
    keep: np.ndarray,
) -> np.ndarray:  # pragma: no cover - compiled
    """(T, 3) int64 triplets in (a, p, n) order; ``keep`` (sorted running indices) subsamples
    when non-empty, else all ``total`` are written."""
    subsample = keep.shape[0] > 0
    out = np.empty((keep.shape[0] if subsample else total, 3), dtype=np.int64)
    b = dist.shape[0]
    i = 0  # running index over qualifying triplets
    j = 0  # write position
    for a in range(b):
        for p in range(b):
            if p == a or labels[p] != labels[a]:
                continue
            dap = dist[a, p]
            for n in range(b):
                if labels[n] == labels[a]:
                    continue
                gap = dist[a, n] - dap
                if gap > lo and gap < hi:
                    if not subsample or (j < keep.shape[0] and keep[j] == i):
                        out[j, 0] = a
                        out[j, 1] = p
                        out[j, 2] = n
                        j += 1
                    i += 1
    return out


@njit
def pick_in_window(
    dist: np.ndarray,
    labels: np.ndarray,
    lo: float,
    hi: float,
    scale: float,
    use_scale: bool,
    random: bool,
    seed: int,
) -> np.ndarray:  # pragma: no cover - compiled
    """Per anchor-positive pair (a, p), one negative n with ``lo < d_an - d_ap < hi`` (and
    ``d_an > scale * d_ap`` if ``use_scale``): the closest one (ties: smallest index), or, with
    ``random``, a uniform one (count, one draw, second pass; ``np.random`` seeded by ``seed``).
    Returns (T, 3) int64 rows (a, p, n) in (a, p) row-major order."""
    if random:
        np.random.seed(seed)  # noqa: NPY002 - numba-internal state, reseeded per call
    b = dist.shape[0]
    n_pairs = 0
    for a in range(b):
        for p in range(b):
            if p != a and labels[p] == labels[a]:
                n_pairs += 1
    out = np.empty((n_pairs, 3), dtype=np.int64)
    j = 0
    for a in range(b):
        for p in range(b):
            if p == a or labels[p] != labels[a]:
                continue
            dap = dist[a, p]
            bound = scale * dap
            best = np.inf
            choice = -1
            seen = 0
            for n in range(b):
                if labels[n] == labels[a]:
                    continue
                dan = dist[a, n]
                gap = dan - dap
                if not (gap > lo and gap < hi):
                    continue
                if use_scale and not dan > bound:
                    continue
                seen += 1
                if not random and dan < best:
                    best = dan
                    choice = n
            if random and seen > 0:
                # Uniform choice with one draw: pick the r-th candidate in a second pass.
                r = min(int(np.random.random() * seen), seen - 1)  # noqa: NPY002
                for n in range(b):
                    if labels[n] == labels[a]:
                        continue
                    dan = dist[a, n]
                    gap = dan - dap
                    if not (gap > lo and gap < hi):
                        continue
                    if use_scale and not dan > bound:
                        continue
                    if r == 0:
                        choice = n
                        break
                    r -= 1
            if choice >= 0:
                out[j, 0] = a
                out[j, 1] = p
                out[j, 2] = choice
                j += 1
    return out[:j]


@njit
def pick_weighted(
    labels: np.ndarray, log_w: np.ndarray, allowed: np.ndarray, seed: int
) -> np.ndarray:  # pragma: no cover - compiled
    """Per anchor-positive pair (a, p), a negative n drawn with probability ∝ exp(log_w[a, n])
    among ``allowed[a]``. The weights depend on the anchor only, so each anchor's cumulative
    weights are built once and every draw is one uniform plus a binary search. (T, 3) int64."""
    np.random.seed(seed)  # noqa: NPY002 - numba-internal state, reseeded per call
    b = labels.shape[0]
    n_pairs = 0
    for a in range(b):
        for p in range(b):
            if p != a and labels[p] == labels[a]:
                n_pairs += 1
    out = np.empty((n_pairs, 3), dtype=np.int64)
    cdf = np.empty(b, dtype=np.float64)
    j = 0
    for a in range(b):
        top = -np.inf
        for n in range(b):
            if allowed[a, n] and log_w[a, n] > top:
                top = log_w[a, n]
        total = 0.0
        for n in range(b):
            if allowed[a, n]:
                total += np.exp(log_w[a, n] - top)
            cdf[n] = total
        if total <= 0.0:
            continue
        for p in range(b):
            if p == a or labels[p] != labels[a]:
                continue
            u = np.random.random() * total  # noqa: NPY002
            k = np.searchsorted(cdf, u, side="right")
            # u < total, so n < b; cdf is flat on disallowed entries, never selecting them
            out[j, 0] = a
            out[j, 1] = p
            out[j, 2] = min(k, b - 1)
            j += 1
    return out[:j]
