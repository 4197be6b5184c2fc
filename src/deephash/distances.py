"""Pairwise distances shared by losses and miners.

All metrics are *dissimilarities* (smaller = closer), so losses and miners never need an
"is this a similarity?" switch:

- ``"euclidean"``: ``||x - y||_2``;
- ``"squared_euclidean"``: ``||x - y||_2^2``;
- ``"cosine"``: ``1 - cos(x, y)``, in ``[0, 2]`` (always computed on L2-normalized inputs).

The square root is taken so that gradients stay finite at zero distance (the diagonal of a
batch's own distance matrix, or duplicate embeddings): entries that are exactly zero after
clamping go through ``sqrt(1)`` and are then replaced by 0, so their gradient is 0, not NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch
import torch.nn.functional as F

__all__ = ["METRICS", "Distance", "Metric", "pairwise_distances", "safe_sqrt"]

Metric = Literal["euclidean", "squared_euclidean", "cosine"]
METRICS: tuple[str, ...] = get_args(Metric)


def safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """Element-wise ``sqrt(max(x, 0))`` whose gradient is 0 (not inf/NaN) where the result is 0.

    x: float tensor of any shape, typically squared distances. Returns a tensor of the same shape.
    """
    x = x.clamp_min(0.0)
    zero = x <= 0.0
    # The "double where" keeps sqrt away from 0 so its backward never divides by zero.
    root = torch.sqrt(torch.where(zero, torch.ones_like(x), x))
    return torch.where(zero, torch.zeros_like(x), root)


def pairwise_distances(
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    metric: Metric | str = "euclidean",
    normalize: bool = True,
) -> torch.Tensor:
    """Distance matrix between the rows of ``x`` and the rows of ``y``.

    x: float (n, D); y: float (m, D), or ``None`` for ``y = x`` (then the diagonal is exactly 0).
    metric: ``"euclidean"``, ``"squared_euclidean"`` or ``"cosine"`` (see module docstring).
    normalize: L2-normalize the rows first (ignored for cosine, which always normalizes).
    Returns float (n, m) with the dtype of ``x``; differentiable, no NaN gradients.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    if x.ndim != 2 or (y is not None and (y.ndim != 2 or y.shape[1] != x.shape[1])):
        shapes = (tuple(x.shape), None if y is None else tuple(y.shape))
        raise ValueError(f"expected x (n, D) and y (m, D) with the same D, got shapes {shapes}")
    same = y is None
    if metric == "cosine" or normalize:
        x = F.normalize(x, dim=1)
        y = x if same else F.normalize(y, dim=1)  # type: ignore[arg-type]
    elif same:
        y = x
    assert y is not None
    gram = x @ y.T
    if metric == "cosine":
        dist = 1.0 - gram
    else:
        if normalize:
            # ||x||=||y||=1: saves two reductions and is as accurate.
            sq = 2.0 - 2.0 * gram
        else:
            sq = (x * x).sum(1, keepdim=True) + (y * y).sum(1)[None, :] - 2.0 * gram
        sq = sq.clamp_min(0.0)
        if metric == "squared_euclidean":
            dist = sq
        elif torch.is_grad_enabled() and sq.requires_grad:
            dist = safe_sqrt(sq)
        else:
            dist = sq.sqrt()
    if same:
        # Rounding leaves ~1e-7 on the diagonal; a point is at distance exactly 0 from itself.
        eye = torch.eye(dist.shape[0], dtype=torch.bool, device=dist.device)
        dist = dist.masked_fill(eye, 0.0)
    return dist


@dataclass(frozen=True)
class Distance:
    """A metric plus the L2-normalization switch; call ``matrix`` to get a distance matrix.

    metric: ``"euclidean"`` (default), ``"squared_euclidean"`` or ``"cosine"``.
    normalize: L2-normalize embeddings first (default ``True``: distances then lie in [0, 2]
        for euclidean, [0, 4] for squared euclidean).
    """

    metric: Metric = "euclidean"
    normalize: bool = True

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; choose one of {', '.join(METRICS)}")

    def matrix(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Distances float (n, m) between rows of x (n, D) and y (m, D) (y=None: y = x)."""
        return pairwise_distances(x, y, metric=self.metric, normalize=self.normalize)
