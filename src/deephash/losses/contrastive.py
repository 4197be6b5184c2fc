"""Contrastive loss on pairs (Hadsell, Chopra & LeCun, CVPR 2006)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from deephash.distances import Metric
from deephash.losses._mined import MinedPairLoss
from deephash.losses.base import register_loss

if TYPE_CHECKING:
    from deephash.miners import PairMiner

__all__ = ["ContrastiveLoss"]


@register_loss("contrastive")
class ContrastiveLoss(MinedPairLoss):
    """Contrastive loss, Hadsell, Chopra & LeCun, "Dimensionality Reduction by Learning an
    Invariant Mapping", CVPR 2006, Eq. (4), written with y = 1 for a similar pair:

        L(x1, x2, y) = y · d² + (1 - y) · max(0, m - d)²,     d = d(x1, x2),

    averaged over all mined pairs (positive and negative together). The paper's factor 1/2 on both
    terms is dropped (a constant scale) and its label convention (Y = 0 similar) flipped.

    margin: m (> 0), in units of the distance (Euclidean on L2-normalized embeddings by default,
        where distances lie in [0, 2]). A plain float attribute a schedule may change.
    miner: pair miner name or object: ``"all-pairs"`` (default) or ``"hard-pairs"``.
    forward(embeddings float (B, D), labels int (B,)) -> LossOutput; ``num_terms`` = number of
    pairs, ``active_fraction`` = share of pairs with a non-zero term (positive pairs at a non-zero
    distance, negative pairs closer than the margin).
    """

    def __init__(
        self,
        *,
        margin: float = 1.0,
        miner: PairMiner | str = "all-pairs",
        metric: Metric = "euclidean",
        normalize: bool = True,
    ) -> None:
        if margin <= 0:
            raise ValueError(f"margin must be > 0, got {margin}")
        super().__init__(miner=miner, metric=metric, normalize=normalize)
        self.margin = float(margin)

    def pair_terms(
        self, d_pos: torch.Tensor, d_neg: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return d_pos.pow(2), (self.margin - d_neg).clamp_min(0).pow(2)
