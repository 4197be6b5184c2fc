"""Batch-hard triplet loss (Hermans, Beyer & Leibe, 2017)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from deephash.distances import Metric
from deephash.losses._mined import MinedTripletLoss
from deephash.losses.base import register_loss

__all__ = ["BatchHardLoss"]


@register_loss("batch-hard")
class BatchHardLoss(MinedTripletLoss):
    """Batch-hard loss L_BH, Hermans, Beyer & Leibe, "In Defense of the Triplet Loss for Person
    Re-Identification", arXiv:1703.07737, 2017, Sec. 2 ("Batch Hard"):

        L_BH = mean_a [ m + max_{p: y_p = y_a} D(a, p) - min_{n: y_n != y_a} D(a, n) ]_+

    or, with ``soft_margin=True`` (Sec. 2, "soft-margin"), ``softplus(max D(a,p) - min D(a,n))``
    = ln(1 + exp(·)) instead of the hinge. One term per anchor that has a positive and a negative
    in the batch (P × K sampling guarantees both). The gradient flows through the selected
    distances only, exactly as through the max/min.

    D: plain Euclidean (the paper found squared distances worse). Default ``normalize=True`` for
    consistency with the rest of deephash; the paper does not normalize (``normalize=False``).
    margin: m (>= 0), ignored with ``soft_margin``; a plain float attribute.
    compute_triplets(embeddings, a, p, n) applies the same per-triplet term to given triplets.
    """

    def __init__(
        self,
        *,
        margin: float = 0.2,
        soft_margin: bool = False,
        metric: Metric = "euclidean",
        normalize: bool = True,
    ) -> None:
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        super().__init__(miner="batch-hard", metric=metric, normalize=normalize, margin=margin)
        self.soft_margin = soft_margin

    def triplet_terms(self, d_ap: torch.Tensor, d_an: torch.Tensor) -> torch.Tensor:
        if self.soft_margin:
            return F.softplus(d_ap - d_an)
        assert self.margin is not None
        return (d_ap - d_an + self.margin).clamp_min(0)
