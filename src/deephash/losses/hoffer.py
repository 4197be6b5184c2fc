"""Triplet network with a softmax over distances (Hoffer & Ailon, SIMBAD 2015)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from deephash.distances import Metric
from deephash.losses._mined import MinedTripletLoss
from deephash.losses.base import register_loss

if TYPE_CHECKING:
    from deephash.miners import TripletMiner

__all__ = ["HofferLoss"]


@register_loss("hoffer")
class HofferLoss(MinedTripletLoss):
    """Hoffer & Ailon, "Deep Metric Learning Using Triplet Network", SIMBAD 2015
    (arXiv:1412.6622), Sec. 3. The two distances go through a softmax (Eq. (1)):

        d+ = e^{||a-p||} / (e^{||a-p||} + e^{||a-n||}),   d- = e^{||a-n||} / (e^{||a-p||} + e^{||a-n||}),

    and the loss is the squared distance of (d+, d-) to (0, 1) (Eq. (2)):

        L = ||(d+, d- - 1)||² = d+² + (d- - 1)² = 2 · d+²,

    averaged over the mined triplets. ``d+ = sigmoid(||a-p|| - ||a-n||)`` is used for stability.
    No margin. Default: plain Euclidean distances without normalization, as in the paper (on the
    unit sphere the softmax could never get close to (0, 1)).

    miner: triplet miner name or object; default ``"all"`` (every valid triplet; the paper samples
        triplets at random, offline: use ``compute_triplets`` with ``RandomTripletDataset``).
    forward(embeddings float (B, D), labels int (B,)) -> LossOutput; ``active_fraction`` = share of
    triplets with a non-zero term (in practice all of them).
    """

    def __init__(
        self,
        *,
        miner: TripletMiner | str = "all",
        metric: Metric = "euclidean",
        normalize: bool = False,
    ) -> None:
        super().__init__(miner=miner, metric=metric, normalize=normalize, margin=None)

    def triplet_terms(self, d_ap: torch.Tensor, d_an: torch.Tensor) -> torch.Tensor:
        d_plus = torch.sigmoid(d_ap - d_an)
        return 2.0 * d_plus * d_plus
