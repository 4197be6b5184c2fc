"""DSH: Deep supervised hashing (Liu, Wang, Shan & Chen, CVPR 2016, Sec. 3.2, relaxed objective).

For a pair of real-valued network outputs ``b1, b2`` (B, bits) and ``y = 0`` if the pair is similar,
``y = 1`` if not (the paper's convention):

    L_r = ½ (1 − y) ||b1 − b2||² + ½ y max(m − ||b1 − b2||², 0)
          + α (|| |b1| − 1 ||₁ + || |b2| − 1 ||₁),

with margin ``m = 2 · bits`` by default (the paper's choice) and ``α = 0.01``. The loss is taken over
all pairs ``i < j`` of the batch and averaged over the number of pairs ``B (B − 1) / 2``; each sample
enters the regularizer once per pair it belongs to, as in the paper's sum over pairs. DSH feeds the
outputs of a linear layer (``HashHead(kind="linear")``), not tanh.
"""

from __future__ import annotations

import torch

from deephash.losses.base import LossOutput, MetricLoss, register_loss

__all__ = ["DSHLoss"]


@register_loss("dsh")
class DSHLoss(MetricLoss):
    """DSH pairwise contrastive loss with the ``|| |b| − 1 ||₁`` regularizer.

    forward(b float (B, bits), labels int (B,)) -> LossOutput; ``num_terms`` = number of pairs,
    ``active_fraction`` = share of pairs whose contrastive part is non-zero. ``margin=None`` means
    ``2 · bits``. ``alpha`` and ``margin`` are plain attributes.
    """

    def __init__(self, *, alpha: float = 0.01, margin: float | None = None) -> None:
        super().__init__()
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        if margin is not None and margin <= 0:
            raise ValueError(f"margin must be positive or None (2 * bits), got {margin}")
        self.alpha = float(alpha)
        self.margin = margin

    def compute(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        b = embeddings
        bsz, bits = b.shape
        if bsz < 2:
            return LossOutput(loss=b.sum() * 0.0, num_terms=0, active_fraction=0.0)
        m = float(2 * bits) if self.margin is None else float(self.margin)
        i, j = torch.triu_indices(bsz, bsz, offset=1, device=b.device)
        dist = ((b[i] - b[j]) ** 2).sum(dim=1)
        dissimilar = (labels[i] != labels[j]).to(b.dtype)  # y of the paper
        contrastive = 0.5 * (1 - dissimilar) * dist + 0.5 * dissimilar * torch.relu(m - dist)
        reg = (b.abs() - 1).abs().sum(dim=1)
        # sum over pairs of (reg_i + reg_j) = (B - 1) * sum_i reg_i
        loss = contrastive.mean() + self.alpha * (bsz - 1) * reg.sum() / contrastive.numel()
        active = float((contrastive > 0).float().mean().item())
        return LossOutput(loss=loss, num_terms=int(contrastive.numel()), active_fraction=active)
