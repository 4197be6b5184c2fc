"""Triplet margin loss (FaceNet: Schroff, Kalenichenko & Philbin, CVPR 2015)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from deephash.distances import Metric
from deephash.losses._mined import MinedTripletLoss
from deephash.losses.base import register_loss

if TYPE_CHECKING:
    from deephash.miners import TripletMiner

__all__ = ["TripletMarginLoss"]


@register_loss("triplet-margin")
class TripletMarginLoss(MinedTripletLoss):
    """FaceNet triplet loss, Schroff, Kalenichenko & Philbin, "FaceNet: A Unified Embedding for
    Face Recognition and Clustering", CVPR 2015, Sec. 3.1, Eq. (3):

        L = mean_t max(0, ||f(a) - f(p)||² - ||f(a) - f(n)||² + α),    ||f(x)||₂ = 1,

    over the mined triplets t = (a, p, n) (the paper sums; the mean makes α and the learning rate
    independent of the number of triplets). Embeddings are L2-normalized (``normalize=True``, as
    in the paper, so squared distances lie in [0, 4]); ``squared=False`` uses plain Euclidean
    distances instead.

    margin: α (>= 0); a plain float attribute a schedule may change (a miner built by name
        follows it).
    miner: triplet miner name or object; default ``"semi-hard"`` (FaceNet, Eq. (4)), built with
        the same squared/plain distance and margin.
    forward(embeddings float (B, D), labels int (B,)) -> LossOutput; ``num_terms`` = number of
    triplets, ``active_fraction`` = share with a non-zero hinge.
    """

    def __init__(
        self,
        *,
        margin: float = 0.2,
        miner: TripletMiner | str = "semi-hard",
        normalize: bool = True,
        squared: bool = True,
    ) -> None:
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        metric: Metric = "squared_euclidean" if squared else "euclidean"
        super().__init__(miner=miner, metric=metric, normalize=normalize, margin=float(margin))
        self.squared = squared

    def triplet_terms(self, d_ap: torch.Tensor, d_an: torch.Tensor) -> torch.Tensor:
        assert self.margin is not None
        return (d_ap - d_an + self.margin).clamp_min(0)
