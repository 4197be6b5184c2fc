"""Base class, result type and registry shared by every loss.

Every loss is a ``torch.nn.Module`` whose ``forward(embeddings, labels)`` takes a batch of
embeddings or relaxed codes ``(B, D)`` and integer labels ``(B,)`` and returns a :class:`LossOutput`.
Losses that work on triplets or pairs take their miner as a constructor argument, so the trainer
never needs to know which family a loss belongs to. Hyper-parameters that schedules change during
training (``margin``, ``alpha``, ``lam``...) are plain float attributes the trainer may assign.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from deephash._registry import Registry

__all__ = [
    "LOSSES",
    "LossOutput",
    "MetricLoss",
    "create_loss",
    "list_losses",
    "register_loss",
]


@dataclass
class LossOutput:
    """What a loss returns for one batch.

    loss: scalar tensor to back-propagate.
    num_terms: number of triplets / pairs / samples the loss averaged over (0 when none were mined).
    active_fraction: share of those terms with a non-zero loss, in [0, 1] (1.0 for losses without
        a hinge, e.g. cross-entropy).
    """

    loss: torch.Tensor
    num_terms: int
    active_fraction: float


class MetricLoss(nn.Module):
    """Base class: subclasses implement ``compute(embeddings, labels) -> LossOutput``.

    The base ``forward`` checks shapes and dtypes once, so subclasses don't.
    """

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        if embeddings.ndim != 2:
            raise ValueError(f"embeddings must be (B, D), got shape {tuple(embeddings.shape)}")
        if labels.ndim != 1 or labels.shape[0] != embeddings.shape[0]:
            raise ValueError(
                f"labels must be (B,) with B={embeddings.shape[0]}, got shape {tuple(labels.shape)}"
            )
        return self.compute(embeddings, labels.to(embeddings.device).long())

    def compute(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        raise NotImplementedError


LOSSES: Registry[MetricLoss] = Registry("loss")
"""Every registered loss, by name (see :class:`deephash._registry.Registry`)."""

register_loss = LOSSES.register
"""Class decorator: make a loss creatable by ``create_loss(name, **options)``."""


def list_losses(pattern: str = "*") -> list[str]:
    """Registered loss names matching a shell-style pattern, sorted."""
    return LOSSES.names(pattern)


def create_loss(name: str, **options: Any) -> MetricLoss:
    """Create a registered loss by name; unknown names or options list what exists."""
    return LOSSES.create(name, **options)
