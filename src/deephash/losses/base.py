"""Base class, result type and registry shared by every loss.

Every loss is a ``torch.nn.Module`` whose ``forward(embeddings, labels)`` takes a batch of
embeddings or relaxed codes ``(B, D)`` and integer labels ``(B,)`` and returns a :class:`LossOutput`.
Losses that work on triplets or pairs take their miner as a constructor argument, so the trainer
never needs to know which family a loss belongs to. Hyper-parameters that schedules change during
training (``margin``, ``alpha``, ``lam``...) are plain float attributes the trainer may assign.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn

__all__ = ["LossOutput", "MetricLoss", "create_loss", "list_losses", "register_loss"]


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


_LOSSES: dict[str, Callable[..., MetricLoss]] = {}
T = TypeVar("T", bound=Callable[..., MetricLoss])


def register_loss(name: str) -> Callable[[T], T]:
    """Class decorator: make a loss creatable by ``create_loss(name, **options)``."""

    def deco(cls: T) -> T:
        if name in _LOSSES:
            raise ValueError(f"loss {name!r} is registered twice")
        _LOSSES[name] = cls
        return cls

    return deco


def list_losses(pattern: str = "*") -> list[str]:
    """Registered loss names matching a shell-style pattern, sorted."""
    return sorted(n for n in _LOSSES if fnmatch.fnmatch(n, pattern))


def create_loss(name: str, **options: Any) -> MetricLoss:
    """Create a registered loss by name; unknown names list what exists."""
    if name not in _LOSSES:
        raise ValueError(f"unknown loss {name!r}; available: {', '.join(list_losses())}")
    return _LOSSES[name](**options)
