"""DNNH triplet ranking hinge loss (Lai, Pan, Liu & Yan, "Simultaneous feature learning and hash
coding with deep neural networks", CVPR 2015, Sec. 3.1).

For a triplet (I, I⁺, I⁻) and network outputs F(·) ∈ [0, 1]^q the paper's loss is

    ℓ = max(0, 1 − (||F(I) − F(I⁻)||² − ||F(I) − F(I⁺)||²)),

a hinge with margin 1 on squared Euclidean distances of the [0, 1] outputs (the relaxation of
Hamming distances). Our hash heads emit codes ``u`` in [-1, 1], so the loss first maps them back
with ``F = (u + 1) / 2``; this keeps the paper's margin meaning (with ``u`` directly the same margin
would be 4 times smaller relative to the distances). The loss is averaged over triplets; every
valid triplet of the batch is used by default, or a miner's.
"""

from __future__ import annotations

import torch

from deephash.losses.base import LossOutput, MetricLoss, register_loss
from deephash.losses.triplet_hash import TripletMinerLike, resolve_miner, select_triplets

__all__ = ["DNNHLoss"]


@register_loss("dnnh")
class DNNHLoss(MetricLoss):
    """DNNH triplet ranking hinge loss on [0, 1] outputs mapped from codes in [-1, 1].

    forward(u float (B, bits) in [-1, 1], labels int (B,)) -> LossOutput; ``num_terms`` is the
    number of triplets, ``active_fraction`` the share with a positive hinge. ``margin`` (1 in the
    paper) is a plain float attribute.
    """

    def __init__(self, *, margin: float = 1.0, miner: TripletMinerLike | str | None = None) -> None:
        super().__init__()
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        self.margin = float(margin)
        self.miner = resolve_miner(miner)

    def compute(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        a, p, n = select_triplets(embeddings, labels, self.miner)
        if a.numel() == 0:
            return LossOutput(loss=embeddings.sum() * 0.0, num_terms=0, active_fraction=0.0)
        f = (embeddings + 1.0) * 0.5
        d_pos = ((f[a] - f[p]) ** 2).sum(dim=1)
        d_neg = ((f[a] - f[n]) ** 2).sum(dim=1)
        hinge = torch.relu(self.margin - (d_neg - d_pos))
        active = float((hinge > 0).float().mean().item())
        return LossOutput(loss=hinge.mean(), num_terms=int(a.numel()), active_fraction=active)
