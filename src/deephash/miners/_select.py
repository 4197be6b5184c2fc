"""Vectorized selection helpers shared by the triplet miners (private).

Every triplet rule is evaluated on a ``(pairs, B)`` slab: one row per anchor-positive pair
``(a, p)``, one column per candidate negative ``n``. With P × K-sampled batches that is
``B (K - 1) × B`` numbers, far fewer than the ``B³`` cube of all index triples, and the slab is cut
into chunks of at most ``_BUDGET`` entries so memory stays bounded at B = 1,024 and beyond.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import torch

from deephash.miners.base import MiningBatch, Triplets
from deephash.miners.seeded_random import SeededRandom

# Entries per (pairs, B) chunk: 4M floats = 16 MiB, small enough for any device.
_BUDGET = 1 << 22
# CPU tensors use the fused numba kernels; tests switch this off to check the torch path.
_USE_NUMBA = True

# key_fn(d_ap (c, 1), d_an (c, B), negative (c, B) bool) -> float (c, B), +inf = not allowed
KeyFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _pair_chunks(
    batch: MiningBatch,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield (a (c,), p (c,), d_ap (c, 1), d_an (c, B), negative (c, B)) over all (a, p) pairs."""
    a_all, p_all = batch.positive_pairs()
    step = max(1, _BUDGET // max(1, batch.size))
    for start in range(0, a_all.shape[0], step):
        a = a_all[start : start + step]
        p = p_all[start : start + step]
        d_an = batch.dist[a]
        yield a, p, d_an.gather(1, p[:, None]), d_an, batch.negative_mask[a]


def _empty(device: torch.device) -> Triplets:
    e = torch.empty(0, dtype=torch.long, device=device)
    return Triplets(e, e.clone(), e.clone())


def _cat(parts: list[Triplets], device: torch.device) -> Triplets:
    if not parts:
        return _empty(device)
    return Triplets(*(torch.cat([t[i] for t in parts]) for i in range(3)))


def pick_one_per_pair(batch: MiningBatch, key_fn: KeyFn) -> Triplets:
    """For every (a, p) pair, the negative with the smallest finite key (none if all are inf).

    Output is ordered by (a, p) row-major.
    """
    parts = []
    for a, p, d_ap, d_an, neg in _pair_chunks(batch):
        key = key_fn(d_ap, d_an, neg)
        best, n = key.min(dim=1)
        ok = torch.isfinite(best)
        parts.append(Triplets(a[ok], p[ok], n[ok]))
    return _cat(parts, batch.dist.device)


def pick_all(
    batch: MiningBatch,
    lo: float = -math.inf,
    hi: float = math.inf,
    max_triplets: int | None = None,
    rng: SeededRandom | None = None,
) -> Triplets:
    """Every triplet (a, p, n), n a negative of a, with ``lo < d(a, n) - d(a, p) < hi``.

    With ``max_triplets`` and more candidates than that, returns a uniformly random subset of
    exactly ``max_triplets`` (without replacement). Output is in lexicographic (a, p, n) order.
    CPU tensors go through a fused numba kernel; other devices through chunked torch ops; both
    give the same set.
    """
    if max_triplets is not None and rng is None:
        raise ValueError("pick_all needs an rng to subsample")
    if _USE_NUMBA and batch.dist.device.type == "cpu":
        return _pick_all_numba(batch, lo, hi, max_triplets, rng)
    return _pick_all_torch(batch, lo, hi, max_triplets, rng)


def _pick_all_numba(
    batch: MiningBatch, lo: float, hi: float, max_triplets: int | None, rng: SeededRandom | None
) -> Triplets:
    from deephash.miners._kernels import count_window, fill_window

    dist = batch.dist.contiguous().numpy()
    labels = batch.labels.contiguous().numpy()
    lo_, hi_ = dist.dtype.type(lo), dist.dtype.type(hi)
    total = int(count_window(dist, labels, lo_, hi_).sum())
    keep = np.empty(0, dtype=np.int64)
    if max_triplets is not None and total > max_triplets and rng is not None:
        keep = np.sort(rng.numpy.choice(total, size=max_triplets, replace=False)).astype(np.int64)
    out = torch.from_numpy(fill_window(dist, labels, lo_, hi_, total, keep))
    return Triplets(out[:, 0], out[:, 1], out[:, 2])


def _pick_all_torch(
    batch: MiningBatch, lo: float, hi: float, max_triplets: int | None, rng: SeededRandom | None
) -> Triplets:
    def mask(d_ap: torch.Tensor, d_an: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        gap = d_an - d_ap
        if lo > -math.inf:
            neg = neg & (gap > lo)
        if hi < math.inf:
            neg = neg & (gap < hi)
        return neg

    device = batch.dist.device
    quota: list[int] | None = None
    if max_triplets is not None and rng is not None:
        counts = [int(mask(d_ap, d_an, neg).sum()) for _, _, d_ap, d_an, neg in _pair_chunks(batch)]
        if sum(counts) > max_triplets:
            # Multivariate hypergeometric split over chunks + uniform choice inside each chunk
            # = a uniform sample without replacement over all candidates.
            split = rng.numpy.multivariate_hypergeometric(np.asarray(counts), max_triplets)
            quota = [int(k) for k in split]
    parts = []
    for i, (a, p, d_ap, d_an, neg) in enumerate(_pair_chunks(batch)):
        if quota is not None and quota[i] == 0:
            continue
        row, n = mask(d_ap, d_an, neg).nonzero(as_tuple=True)
        if quota is not None and rng is not None:
            keep = np.sort(rng.numpy.choice(row.shape[0], size=quota[i], replace=False))
            sel = torch.from_numpy(keep).to(device)
            row, n = row[sel], n[sel]
        parts.append(Triplets(a[row], p[row], n))
    return _cat(parts, device)


def _rows_to_triplets(rows: np.ndarray) -> Triplets:
    t = torch.from_numpy(rows)
    return Triplets(t[:, 0], t[:, 1], t[:, 2])


def pick_window(
    batch: MiningBatch,
    lo: float = -math.inf,
    hi: float = math.inf,
    *,
    scale: float | None = None,
    random: bool = False,
    rng: SeededRandom | None = None,
) -> Triplets:
    """One negative per (a, p) pair inside the window ``lo < d(a,n) - d(a,p) < hi`` (and
    ``d(a,n) > scale · d(a,p)`` when ``scale`` is given): the closest (ties: smallest index) or,
    with ``random``, a uniform one drawn from ``rng``. Pairs with an empty window give nothing.

    CPU: one fused numba pass; elsewhere: chunked torch ops. Deterministic choices are identical
    on both paths; random ones are reproducible per seed and device.
    """
    if random and rng is None:
        raise ValueError("pick_window(random=True) needs an rng")
    if _USE_NUMBA and batch.dist.device.type == "cpu":
        from deephash.miners._kernels import pick_in_window

        dist = batch.dist.contiguous().numpy()
        f = dist.dtype.type
        seed = int(rng.numpy.integers(0, 2**31 - 1)) if (random and rng is not None) else 0
        rows = pick_in_window(
            dist,
            batch.labels.contiguous().numpy(),
            f(lo),
            f(hi),
            f(0.0 if scale is None else scale),
            scale is not None,
            random,
            seed,
        )
        return _rows_to_triplets(rows)
    device = batch.dist.device
    inf = math.inf

    def key(d_ap: torch.Tensor, d_an: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        gap = d_an - d_ap
        allowed = neg
        if lo > -inf:
            allowed = allowed & (gap > lo)
        if hi < inf:
            allowed = allowed & (gap < hi)
        if scale is not None:
            allowed = allowed & (d_an > scale * d_ap)
        if random and rng is not None:
            return rng.uniform(tuple(d_an.shape), device).masked_fill(~allowed, inf)
        return d_an.masked_fill(~allowed, inf)

    return pick_one_per_pair(batch, key)


def pick_weighted(
    batch: MiningBatch, log_w: torch.Tensor, allowed: torch.Tensor, rng: SeededRandom
) -> Triplets:
    """One negative per (a, p) pair, drawn with probability ∝ exp(log_w[a, n]) over
    ``allowed[a]`` (float (B, B) and bool (B, B); the weights depend on the anchor only)."""
    if _USE_NUMBA and batch.dist.device.type == "cpu":
        from deephash.miners._kernels import pick_weighted as kernel

        seed = int(rng.numpy.integers(0, 2**31 - 1))
        lw = log_w.to(torch.float64).contiguous().numpy()
        rows = kernel(batch.labels.contiguous().numpy(), lw, allowed.contiguous().numpy(), seed)
        return _rows_to_triplets(rows)
    device = batch.dist.device
    a_all, p_all = batch.positive_pairs()
    step = max(1, _BUDGET // max(1, batch.size))
    parts = []
    for start in range(0, a_all.shape[0], step):
        a, p = a_all[start : start + step], p_all[start : start + step]
        e = rng.exponential((a.shape[0], batch.size), device)
        key = (torch.log(e) - log_w[a]).masked_fill(~allowed[a], math.inf)
        best, n = key.min(dim=1)
        ok = torch.isfinite(best)
        parts.append(Triplets(a[ok], p[ok], n[ok]))
    return _cat(parts, device)
