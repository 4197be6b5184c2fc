"""A weighted sum of registered losses, e.g. batch-hard triplets plus normalized softmax."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from deephash.losses.base import LOSSES, LossOutput, MetricLoss, create_loss, register_loss

__all__ = ["CombinedLoss"]


@register_loss("combined")
class CombinedLoss(MetricLoss):
    """``L = sum_j weight_j * L_j`` over component losses created by name.

    losses: sequence of mappings ``{"name": ..., "weight": 1.0, **options}``.
    embedding_dim, num_classes: handed to the components that take them (classification and
    proxy losses). Schedulable attributes (``margin``, ``alpha``, ``lam``...) set on this loss are
    forwarded to every component that has them. The output's ``num_terms`` and ``active_fraction``
    are those of the first component that mines triplets or pairs (so the history shows the share of
    active triplets), else of the first component.
    """

    def __init__(
        self,
        *,
        losses: Sequence[Mapping[str, Any]],
        embedding_dim: int | None = None,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        if not losses:
            raise ValueError("combined needs at least one component in `losses`")
        parts: list[MetricLoss] = []
        weights: list[float] = []
        for spec in losses:
            spec = dict(spec)
            if "name" not in spec:
                raise ValueError(f"each combined component needs a 'name', got {spec}")
            name = str(spec.pop("name"))
            weights.append(float(spec.pop("weight", 1.0)))
            cls_params = _accepted(name)
            if "embedding_dim" in cls_params and embedding_dim is not None:
                spec.setdefault("embedding_dim", embedding_dim)
            if "num_classes" in cls_params and num_classes is not None:
                spec.setdefault("num_classes", num_classes)
            parts.append(create_loss(name, **spec))
        self.parts = nn.ModuleList(parts)
        self.weights = weights

    def __setattr__(self, name: str, value: Any) -> None:
        # Forward schedulable floats (margin, alpha, lam, ...) to the components that have them.
        if isinstance(value, float) and "parts" in self._modules:
            for part in self._modules["parts"]:  # type: ignore[union-attr]
                if hasattr(part, name):
                    setattr(part, name, value)
        super().__setattr__(name, value)

    def set_progress(self, fraction: float) -> None:
        for part in self.parts:
            hook = getattr(part, "set_progress", None)
            if callable(hook):
                hook(fraction)

    def compute(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        outs = [part(embeddings, labels) for part in self.parts]
        mined = [o for part, o in zip(self.parts, outs) if hasattr(part, "miner")]
        report = mined[0] if mined else outs[0]
        total = sum(
            (w * o.loss for w, o in zip(self.weights, outs)),
            torch.zeros((), device=embeddings.device),
        )
        return LossOutput(total, report.num_terms, report.active_fraction)


def _accepted(name: str) -> set[str]:
    return set(LOSSES.options(name))  # an unknown name raises the standard "unknown loss" error
