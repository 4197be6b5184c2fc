"""Batch-all triplet loss (Hermans, Beyer & Leibe, 2017)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from deephash.distances import Distance, Metric
from deephash.losses._mined import check_indices, zero_loss
from deephash.losses.base import LossOutput, MetricLoss, register_loss

__all__ = ["BatchAllLoss"]

# Entries of the (anchor-positive pairs, B) slab evaluated at once: 4M floats = 16 MiB.
_BUDGET = 1 << 22


@register_loss("batch-all")
class BatchAllLoss(MetricLoss):
    """Batch-all loss L_BA, Hermans, Beyer & Leibe, "In Defense of the Triplet Loss for Person
    Re-Identification", arXiv:1703.07737, 2017, Sec. 2 ("Batch All"): every valid triplet of the
    batch,

        L_BA = (1 / #active) Σ_{a, p: y_p = y_a, p != a} Σ_{n: y_n != y_a} [m + D(a, p) - D(a, n)]_+

    averaged over the *active* triplets (those with a non-zero term), as the paper does, so easy
    triplets do not wash the gradient out. ``soft_margin=True`` uses softplus(D(a,p) - D(a,n)),
    which is never zero, so the mean is over all valid triplets.

    Memory stays O(B²) although there are O(B³) triplets: the triplets are evaluated, without
    gradient, in chunks of anchor-positive pairs against all candidate negatives, accumulating the loss value and, per distance entry, its total
    weight ∂L/∂D(a, b) (the number of active triplets using it, or the summed sigmoids for the soft
    margin). The returned loss is that exact value plus ``Σ W ⊙ D - stopgrad(Σ W ⊙ D)``, whose
    gradient is exactly the batch-all gradient.

    D: plain Euclidean; default ``normalize=True`` (the paper does not normalize).
    margin: m (>= 0), ignored with ``soft_margin``; a plain float attribute.
    """

    def __init__(
        self,
        *,
        margin: float = 0.2,
        soft_margin: bool = False,
        metric: Metric = "euclidean",
        normalize: bool = True,
    ) -> None:
        super().__init__()
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        self.margin = float(margin)
        self.soft_margin = soft_margin
        self.distance = Distance(metric, normalize)

    def _term(self, x: torch.Tensor) -> torch.Tensor:
        """x = D(a,p) - D(a,n) -> per-triplet loss."""
        return F.softplus(x) if self.soft_margin else (x + self.margin).clamp_min(0)

    def _weight(self, x: torch.Tensor) -> torch.Tensor:
        """Derivative of ``_term`` with respect to x."""
        if self.soft_margin:
            return torch.sigmoid(x)
        return ((x + self.margin) > 0).to(x.dtype)

    def compute(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        dist = self.distance.matrix(embeddings)
        b = dist.shape[0]
        same = labels[:, None] == labels[None, :]
        pos = same & ~torch.eye(b, dtype=torch.bool, device=dist.device)
        neg = ~same
        w_pos = torch.zeros_like(dist)
        w_neg = torch.zeros_like(dist)
        total = dist.new_zeros(())
        n_valid = 0
        n_active = 0
        with torch.no_grad():
            d = dist.detach()
            a_all, p_all = pos.nonzero(as_tuple=True)
            # One row per anchor-positive pair, one column per candidate negative: B(K-1) x B
            # entries instead of the B³ cube, in chunks of at most _BUDGET entries.
            step = max(1, _BUDGET // max(1, b))
            for s in range(0, a_all.shape[0], step):
                a, p = a_all[s : s + step], p_all[s : s + step]
                valid = neg[a]
                x = d[a, p][:, None] - d[a]
                term = self._term(x) * valid
                weight = self._weight(x) * valid
                total += term.sum()
                n_valid += int(valid.sum())
                n_active += int((term > 0).sum())
                w_pos[a, p] = weight.sum(dim=1)
                w_neg.index_add_(0, a, weight)
        if n_valid == 0:
            return zero_loss(embeddings)
        denom = n_valid if self.soft_margin else n_active
        if denom == 0:
            return LossOutput(dist.sum() * 0.0, n_valid, 0.0)
        surrogate = (w_pos * dist).sum() - (w_neg * dist).sum()
        loss = (total + surrogate - surrogate.detach()) / denom
        return LossOutput(loss, n_valid, n_active / n_valid)

    def compute_triplets(
        self,
        embeddings: torch.Tensor,
        anchor: torch.Tensor,
        positive: torch.Tensor,
        negative: torch.Tensor,
    ) -> LossOutput:
        """Same terms and active-mean on given triplets (int64 (T,) indices into (B, D))."""
        check_indices(
            embeddings.shape[0], ("anchor", "positive", "negative"), anchor, positive, negative
        )
        if not anchor.shape == positive.shape == negative.shape:
            raise ValueError("anchor, positive and negative must have the same length")
        if anchor.numel() == 0:
            return zero_loss(embeddings)
        dist = self.distance.matrix(embeddings)
        dev = embeddings.device
        a, p, n = (t.to(dev).long() for t in (anchor, positive, negative))
        terms = self._term(dist[a, p] - dist[a, n])
        active = terms > 0
        n_active = int(active.sum())
        if n_active == 0:
            return LossOutput(terms.sum() * 0.0, int(terms.numel()), 0.0)
        return LossOutput(terms.sum() / n_active, int(terms.numel()), n_active / terms.numel())
