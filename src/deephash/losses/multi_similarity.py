"""Multi-Similarity loss (Wang, Han, Huang, Dong & Scott, CVPR 2019)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from deephash.losses._mined import check_pairs, pair_miner, zero_loss
from deephash.losses.base import LossOutput, MetricLoss, register_loss

if TYPE_CHECKING:
    from deephash.miners import PairMiner

__all__ = ["MultiSimilarityLoss"]


def _soft_count(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per row: ``log(1 + sum_{mask} exp(logits))``, stably (0 for a row with no mask entry)."""
    masked = torch.where(mask, logits, torch.full_like(logits, float("-inf")))
    zero = torch.zeros(logits.shape[0], 1, dtype=logits.dtype, device=logits.device)
    return torch.logsumexp(torch.cat([zero, masked], dim=1), dim=1)


@register_loss("multi-similarity")
class MultiSimilarityLoss(MetricLoss):
    """Multi-Similarity loss, Wang, Han, Huang, Dong & Scott, "Multi-Similarity Loss with General
    Pair Weighting for Deep Metric Learning", CVPR 2019. With ``S_ik`` the cosine
    similarity of L2-normalised embeddings and, per anchor i, the mined positive pairs P_i and
    negative pairs N_i:

        L = 1/B sum_i [ 1/α log(1 + sum_{k ∈ P_i} exp(-α (S_ik - λ)))
                      + 1/β log(1 + sum_{k ∈ N_i} exp( β (S_ik - λ))) ]

    averaged over all B anchors of the batch (an anchor with no mined pair adds 0): each pair is
    weighted by its own similarity and by the anchor's other pairs (soft-max pooling).
    Equal to pytorch-metric-learning's ``MultiSimilarityLoss(alpha, beta, base)`` on the same pairs;
    with the MS miner an anchor keeps positives exactly when it keeps negatives, so this also
    equals the authors' code (which skips anchors lacking either).

    alpha: α (2 in the paper), beta: β (50), base: λ (0.5; pytorch-metric-learning's ``base``).
    miner: pair miner name or object, default ``"multi-similarity"`` (the paper's mining, ε = 0.1);
        ``"all-pairs"`` uses every pair of the batch. Offline pairs go through ``compute_pairs``.
    forward(embeddings float (B, D), labels int (B,)) -> LossOutput; ``num_terms`` = mined pairs,
    ``active_fraction`` = their share of all positive and negative pairs of the batch.
    """

    def __init__(
        self,
        *,
        alpha: float = 2.0,
        beta: float = 50.0,
        base: float = 0.5,
        miner: PairMiner | str = "multi-similarity",
    ) -> None:
        super().__init__()
        if alpha <= 0 or beta <= 0:
            raise ValueError(f"alpha and beta must be > 0, got alpha={alpha}, beta={beta}")
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.base = float(base)
        self.miner: Any = pair_miner(miner)

    def compute(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        a1, p, a2, n = self.miner(embeddings, labels)
        out = self.compute_pairs(embeddings, a1, p, a2, n)
        same = labels[:, None] == labels[None, :]
        total = int(same.sum()) - labels.shape[0] + int((~same).sum())
        return LossOutput(out.loss, out.num_terms, out.num_terms / total if total else 0.0)

    def compute_pairs(
        self,
        embeddings: torch.Tensor,
        a1: torch.Tensor,
        p: torch.Tensor,
        a2: torch.Tensor,
        n: torch.Tensor,
    ) -> LossOutput:
        """The loss on given pairs: positive pairs (a1, p) int64 (P,) and negative pairs (a2, n)
        int64 (N,), indices into embeddings float (B, D); a pair listed twice counts once.
        ``active_fraction`` is 1.0 (every pair adds a positive term)."""
        check_pairs(embeddings, a1, p, a2, n)
        if a1.numel() + a2.numel() == 0:
            return zero_loss(embeddings)
        b = embeddings.shape[0]
        dev = embeddings.device
        pos = torch.zeros(b, b, dtype=torch.bool, device=dev)
        neg = torch.zeros(b, b, dtype=torch.bool, device=dev)
        pos[a1.to(dev), p.to(dev)] = True
        neg[a2.to(dev), n.to(dev)] = True
        x = F.normalize(embeddings, dim=1)
        sim = x @ x.T
        pos_term = _soft_count(-self.alpha * (sim - self.base), pos) / self.alpha
        neg_term = _soft_count(self.beta * (sim - self.base), neg) / self.beta
        return LossOutput((pos_term + neg_term).mean(), int(pos.sum() + neg.sum()), 1.0)
