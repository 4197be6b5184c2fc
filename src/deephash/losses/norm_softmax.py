"""Normalized-softmax (proxy) loss: a cosine classifier with a temperature."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deephash.losses._proxies import check_class_batch, check_sizes
from deephash.losses.base import LossOutput, MetricLoss, register_loss

__all__ = ["NormSoftmaxLoss"]


@register_loss("norm-softmax")
class NormSoftmaxLoss(MetricLoss):
    """Normalized softmax of Zhai & Wu ("Classification is a strong baseline for deep metric
    learning", BMVC 2019, Eq. 2), the cosine-proxy form of NormFace (Wang et al. 2017):

        L = mean_i [ -log( exp(cos(e_i, w_{y_i}) / T) / sum_c exp(cos(e_i, w_c) / T) ) ],

    with one learned proxy ``w_c`` per class, both embeddings and proxies L2-normalized, and
    temperature ``T`` (0.05 in the paper). Each proxy pulls its class together and pushes the others
    away in angle, so it is a metric-learning loss whose clusters retrieve well by Euclidean or
    cosine distance; optional label smoothing regularises it.

    embedding_dim: D; num_classes: C (labels in [0, C)).
    forward(embeddings float (B, D), labels int (B,)) -> LossOutput (num_terms = B,
    active_fraction = share of samples whose own proxy is not the most similar one).
    """

    def __init__(
        self,
        *,
        embedding_dim: int,
        num_classes: int,
        temperature: float = 0.05,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        check_sizes(embedding_dim, num_classes)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.embedding_dim = int(embedding_dim)
        self.num_classes = int(num_classes)
        self.temperature = float(temperature)
        self.label_smoothing = float(label_smoothing)
        self.proxies = nn.Parameter(torch.randn(self.num_classes, self.embedding_dim) * 0.01)

    def compute(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        check_class_batch(embeddings, labels, self.embedding_dim, self.num_classes)
        cos = F.normalize(embeddings, dim=1) @ F.normalize(self.proxies, dim=1).T
        logits = cos / self.temperature
        loss = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        wrong = float((cos.argmax(dim=1) != labels).float().mean()) if labels.numel() else 0.0
        return LossOutput(loss, int(labels.shape[0]), wrong)
