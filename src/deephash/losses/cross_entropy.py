"""Softmax classification baseline: a linear classifier on the embeddings + cross-entropy."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deephash.losses.base import LossOutput, MetricLoss, register_loss

__all__ = ["CrossEntropyLoss"]


@register_loss("cross-entropy")
class CrossEntropyLoss(MetricLoss):
    """Softmax cross-entropy of a linear classifier on the embeddings (the classification
    baseline that metric-learning papers compare against):

        L = mean_i [ -log softmax(W e_i + b)_{y_i} ].

    The loss owns the classifier ``nn.Linear(embedding_dim, num_classes)``; it is a submodule, so
    ``loss.parameters()`` yields its weights and a trainer that builds its optimizer over
    ``model.parameters()`` *and* ``loss.parameters()`` trains it. Retrieval uses the embeddings,
    never the classifier.

    embedding_dim: D of the embeddings; num_classes: C, labels must lie in [0, C).
    forward(embeddings float (B, D), labels int (B,)) -> LossOutput with ``num_terms`` = B and
    ``active_fraction`` = 1.0 (no hinge).
    """

    def __init__(self, *, embedding_dim: int, num_classes: int) -> None:
        super().__init__()
        if embedding_dim < 1 or num_classes < 2:
            raise ValueError(
                f"need embedding_dim >= 1 and num_classes >= 2, got {embedding_dim}, {num_classes}"
            )
        self.embedding_dim = int(embedding_dim)
        self.num_classes = int(num_classes)
        self.classifier = nn.Linear(self.embedding_dim, self.num_classes)

    def compute(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        if embeddings.shape[1] != self.embedding_dim:
            raise ValueError(
                f"embeddings have D={embeddings.shape[1]} but the classifier expects "
                f"embedding_dim={self.embedding_dim}"
            )
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
            raise ValueError(
                f"labels must lie in [0, {self.num_classes}), got min {int(labels.min())}, "
                f"max {int(labels.max())}; set num_classes to the number of training classes"
            )
        logits = self.classifier(embeddings)
        return LossOutput(F.cross_entropy(logits, labels), int(labels.shape[0]), 1.0)
