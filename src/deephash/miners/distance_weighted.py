"""``distance-weighted``: negatives sampled against the distance density on the hypersphere."""

from __future__ import annotations

import torch

from deephash.distances import Metric
from deephash.miners._select import pick_weighted
from deephash.miners.base import MiningBatch, TripletMiner, Triplets, register_miner
from deephash.miners.seeded_random import SeededRandom

__all__ = ["DistanceWeightedMiner", "log_inverse_sphere_density"]


def log_inverse_sphere_density(d: torch.Tensor, dim: int) -> torch.Tensor:
    """``-log q(d)`` up to a constant, for unit vectors uniform on the sphere in R^dim.

    Wu, Manmatha, Smola & Krähenbühl, "Sampling Matters in Deep Embedding Learning", ICCV 2017,
    Sec. 4: the distance between two uniform points on the unit sphere S^(n-1) has density

        q(d) ∝ d^(n-2) · (1 - d²/4)^((n-3)/2),     0 < d < 2,  n = dim.

    d: float tensor of distances in (0, 2) (callers clip); returns a float tensor of that shape.
    """
    d = d.clamp(1e-6, 2.0 - 1e-6)
    return -(dim - 2.0) * torch.log(d) - ((dim - 3.0) / 2.0) * torch.log1p(-0.25 * d * d)


@register_miner("distance-weighted")
class DistanceWeightedMiner(TripletMiner):
    """Distance-weighted sampling (Wu et al., ICCV 2017, Sec. 4), one negative per (a, p) pair:

        Pr(n | a) ∝ min(λ, q(d(a, n))^-1)   over negatives with d(a, n) < nonzero_loss_cutoff,

    with q the sphere distance density above. The clip ``λ`` is realised, as in the authors'
    code, by clipping distances from below at ``cutoff`` (0.5), which bounds the weight of
    near-duplicates that would otherwise dominate. Negatives at or beyond ``nonzero_loss_cutoff``
    (1.4) would give zero loss and are not sampled; if an anchor has none closer than that, its
    negative is drawn uniformly from all negatives (also as in the authors' code).

    Needs Euclidean distances between L2-normalized embeddings (the density assumes the unit
    sphere); ``metric="squared_euclidean"`` is accepted (so a squared-distance loss can build it)
    and converted back to plain distances; other settings raise ``ValueError``. The cutoffs are
    plain Euclidean distances either way. Sampling is Gumbel-max on the log-weights, so
    it is exact, vectorized and never overflows, even for D = 512 where the weights span
    hundreds of orders of magnitude. Seeded by ``seed``. Memory O(B²).
    """

    def __init__(
        self,
        *,
        cutoff: float = 0.5,
        nonzero_loss_cutoff: float = 1.4,
        seed: int | None = 0,
        metric: Metric = "euclidean",
        normalize: bool = True,
    ) -> None:
        if metric not in ("euclidean", "squared_euclidean") or not normalize:
            raise ValueError(
                "distance-weighted sampling models distances on the unit sphere: it needs "
                "metric='euclidean' (or 'squared_euclidean') and normalize=True, got "
                f"metric={metric!r}, normalize={normalize}"
            )
        if not 0.0 < cutoff < nonzero_loss_cutoff <= 2.0:
            raise ValueError(
                "need 0 < cutoff < nonzero_loss_cutoff <= 2 (distances on the unit sphere), got "
                f"cutoff={cutoff}, nonzero_loss_cutoff={nonzero_loss_cutoff}"
            )
        super().__init__(metric=metric, normalize=normalize)
        self.cutoff = float(cutoff)
        self.nonzero_loss_cutoff = float(nonzero_loss_cutoff)
        self._rng = SeededRandom(seed)

    def mine(self, batch: MiningBatch) -> Triplets:
        d = batch.dist.sqrt() if self.distance.metric == "squared_euclidean" else batch.dist
        neg = batch.negative_mask
        # The weights depend on the anchor only: one (B, B) table, sampled per (a, p) pair.
        log_w = log_inverse_sphere_density(d.clamp_min(self.cutoff), batch.embedding_dim)
        allowed = neg & (d < self.nonzero_loss_cutoff)
        fallback = ~allowed.any(dim=1, keepdim=True)
        allowed = torch.where(fallback, neg, allowed)
        log_w = torch.where(fallback, torch.zeros_like(log_w), log_w)
        return pick_weighted(batch, log_w, allowed, self._rng)
