"""ArcFace: additive angular margin softmax (Deng, Guo, Xue & Zafeiriou, CVPR 2019)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from deephash.losses._proxies import check_class_batch, check_sizes
from deephash.losses.base import LossOutput, MetricLoss, register_loss

__all__ = ["ArcFaceLoss"]


@register_loss("arcface")
class ArcFaceLoss(MetricLoss):
    """ArcFace, Deng, Guo, Xue & Zafeiriou, "ArcFace: Additive Angular Margin Loss for Deep Face
    Recognition", CVPR 2019, Eq. (3): a softmax over the cosines of the L2-normalised embedding and
    class weights, scaled by ``s``, with the margin ``m`` added to the angle of the true class:

        L = mean_i -log( e^{s cos(θ_{y_i} + m)} / (e^{s cos(θ_{y_i} + m)} + sum_{j≠y_i} e^{s cos θ_j}) )

    As in the authors' code (``easy_margin=False``), where ``θ_{y_i} + m`` would pass π the target
    logit is ``cos θ_{y_i} - m sin m`` instead, so the loss keeps decreasing in θ. The margin asks
    every class to occupy a narrow cone, which leaves angular room between the training classes.
    Equal to pytorch-metric-learning's ``ArcFaceLoss(num_classes, embedding_size,
    margin=degrees(m), scale=s)`` (PML takes the margin in degrees) with the same weights.

    embedding_dim: D; num_classes: C (labels in [0, C)). scale: s (64 in the paper; 30 is common
    for small data sets); margin: m in radians (0.5 in the paper). Class weights: standard normal
    from torch's global generator (their length does not matter).
    forward(embeddings float (B, D), labels int (B,)) -> LossOutput (num_terms = B,
    active_fraction = share of samples whose own class is not the most similar one).
    """

    def __init__(
        self,
        *,
        embedding_dim: int,
        num_classes: int,
        scale: float = 64.0,
        margin: float = 0.5,
    ) -> None:
        super().__init__()
        check_sizes(embedding_dim, num_classes)
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        if not 0 <= margin < math.pi / 2:
            raise ValueError(f"margin must be in [0, pi/2) radians, got {margin}")
        self.embedding_dim = int(embedding_dim)
        self.num_classes = int(num_classes)
        self.scale = float(scale)
        self.margin = float(margin)
        self.weight = nn.Parameter(torch.randn(self.num_classes, self.embedding_dim))

    def compute(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        check_class_batch(embeddings, labels, self.embedding_dim, self.num_classes)
        if labels.numel() == 0:
            return LossOutput(embeddings.sum() * 0.0, 0, 0.0)
        weight = self.weight.to(embeddings.dtype)
        cos = F.normalize(embeddings, dim=1) @ F.normalize(weight, dim=1).T  # (B, C)
        rows = torch.arange(labels.shape[0], device=labels.device)
        c = cos[rows, labels].clamp(-1.0, 1.0)
        m = self.margin
        # cos(θ + m) = cos θ cos m - sin θ sin m; the clamp keeps sqrt's gradient finite at θ = 0.
        sin = torch.sqrt((1.0 - c * c).clamp_min(1e-12))
        target = torch.where(
            c > math.cos(math.pi - m), c * math.cos(m) - sin * math.sin(m), c - m * math.sin(m)
        )
        logits = cos.clone()
        logits[rows, labels] = target
        loss = F.cross_entropy(self.scale * logits, labels)
        wrong = float((cos.argmax(dim=1) != labels).float().mean())
        return LossOutput(loss, int(labels.shape[0]), wrong)
