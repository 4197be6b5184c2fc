"""Softmax classification baseline: a linear classifier on the embeddings + cross-entropy."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deephash.losses._proxies import check_class_batch, check_sizes
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
        check_sizes(embedding_dim, num_classes)
        self.embedding_dim = int(embedding_dim)
        self.num_classes = int(num_classes)
        self.classifier = nn.Linear(self.embedding_dim, self.num_classes)

    def compute(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        check_class_batch(embeddings, labels, self.embedding_dim, self.num_classes)
        logits = self.classifier(embeddings)
        return LossOutput(F.cross_entropy(logits, labels), int(labels.shape[0]), 1.0)
