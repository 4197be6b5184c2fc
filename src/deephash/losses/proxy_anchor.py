"""Proxy-Anchor loss (Kim, Kim, Cho & Kwak, CVPR 2020)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deephash.losses._proxies import check_class_batch, check_sizes
from deephash.losses.base import LossOutput, MetricLoss, register_loss

__all__ = ["ProxyAnchorLoss"]


@register_loss("proxy-anchor")
class ProxyAnchorLoss(MetricLoss):
    """Proxy-Anchor loss, Kim, Kim, Cho & Kwak, "Proxy Anchor Loss for Deep Metric Learning",
    CVPR 2020. One learned proxy ``p`` per class; with ``s(x, p)`` the cosine similarity of an
    embedding and a proxy (both on the unit sphere), ``X_p+`` / ``X_p-`` the batch's embeddings of
    / not of p's class, ``P+`` the proxies with at least one positive in the batch and ``P`` all
    proxies:

        L = 1/|P+| sum_{p ∈ P+} log(1 + sum_{x ∈ X_p+} exp(-α (s(x, p) - δ)))
          + 1/|P|  sum_{p ∈ P}  log(1 + sum_{x ∈ X_p-} exp( α (s(x, p) + δ)))

    Each proxy is an anchor that pulls its whole class in the batch and pushes all others,
    every embedding weighted by its hardness relative to the rest of the batch. Equal to
    pytorch-metric-learning's ``ProxyAnchorLoss(num_classes, embedding_size, margin=δ, alpha=α)``
    with the same proxies.

    embedding_dim: D; num_classes: C (labels in [0, C)). alpha: α (32 in the paper), delta: δ (0.1).
    Proxies are initialised as in the authors' code, ``kaiming_normal_(mode="fan_out")`` (from
    torch's global generator, which the trainer seeds); the authors train them with a 100×
    learning rate (``loss_lr_scale: 100`` in a recipe).
    forward(embeddings float (B, D), labels int (B,)) -> LossOutput (num_terms = B,
    active_fraction = share of samples whose own proxy is not the most similar one).
    """

    def __init__(
        self,
        *,
        embedding_dim: int,
        num_classes: int,
        alpha: float = 32.0,
        delta: float = 0.1,
    ) -> None:
        super().__init__()
        check_sizes(embedding_dim, num_classes)
        if alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.embedding_dim = int(embedding_dim)
        self.num_classes = int(num_classes)
        self.alpha = float(alpha)
        self.delta = float(delta)
        self.proxies = nn.Parameter(torch.empty(self.num_classes, self.embedding_dim))
        nn.init.kaiming_normal_(self.proxies, mode="fan_out")

    def compute(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        check_class_batch(embeddings, labels, self.embedding_dim, self.num_classes)
        if labels.numel() == 0:
            return LossOutput(embeddings.sum() * 0.0, 0, 0.0)
        proxies = self.proxies.to(embeddings.dtype)
        cos = F.normalize(embeddings, dim=1) @ F.normalize(proxies, dim=1).T  # (B, C)
        pos = F.one_hot(labels, self.num_classes).bool()
        zero = torch.zeros(1, self.num_classes, dtype=cos.dtype, device=cos.device)
        ninf = torch.full_like(cos, float("-inf"))

        def soft_count(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            # per proxy: log(1 + sum over the masked embeddings of exp(logits))
            return torch.logsumexp(torch.cat([zero, torch.where(mask, logits, ninf)]), dim=0)

        pos_term = soft_count(-self.alpha * (cos - self.delta), pos)
        neg_term = soft_count(self.alpha * (cos + self.delta), ~pos)
        with_pos = int(pos.any(dim=0).sum())
        loss = pos_term.sum() / with_pos + neg_term.sum() / self.num_classes
        wrong = float((cos.argmax(dim=1) != labels).float().mean())
        return LossOutput(loss, int(labels.shape[0]), wrong)
