"""The backbone base class: images (B, C, H, W) in, features (B, D) out, small inputs up-sampled.

Every backbone (built-in or adapter, see :mod:`deephash.models.backbones`) is a :class:`Backbone`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Backbone", "check_head_options"]


class Backbone(nn.Module):
    """Base class of every backbone: a subclass writes :meth:`forward_features`.

    The base :meth:`forward` checks the input (4-D, floating point, ``in_channels`` channels) and
    bilinearly up-samples images whose shorter side is below ``min_input_size``, so that 28×28
    images work with networks designed for larger ones (VGG's five max-pools turn 28 px into 0).

    Attributes:
        out_features: feature dimension D of ``forward``'s output ``(B, D)``.
        in_channels: channels C the stem expects (3 for RGB, 1 for grayscale).
        min_input_size: inputs with ``min(H, W)`` below this are up-sampled (aspect ratio kept).
        arch: registry name of the architecture (``"resnet18"``), used to find ImageNet weights;
            ``None`` for a module built by hand.
        stem_weight_key: state-dict key of the first convolution's weight, whose input channels
            are adapted when 3-channel weights are loaded into a 1-channel stem.
        classifier_prefix: state-dict prefix of the classifier (``"fc"``, ``"classifier.6"``),
            whether or not the classifier is present.
    """

    out_features: int
    in_channels: int
    min_input_size: int = 1
    arch: str | None = None
    stem_weight_key: str | None = None
    classifier_prefix: str | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features of a batch of images.

        x: float (B, in_channels, H, W). Returns float (B, out_features).
        """
        if x.ndim != 4:
            raise ValueError(
                f"{self._label()} expects images (B, C, H, W), got shape {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise ValueError(
                f"{self._label()} expects floating-point images, got {x.dtype}; "
                "convert uint8 images with x.float() / 255 (and normalize) first"
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"{self._label()} was built for {self.in_channels}-channel images but got "
                f"{x.shape[1]} channels (shape {tuple(x.shape)}); create it with "
                f"in_channels={x.shape[1]}"
            )
        return self.forward_features(self._upsample_if_small(x))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Network body on an input already checked and resized: float (B, C, H, W) -> (B, D)."""
        raise NotImplementedError

    def get_classifier(self) -> nn.Module | None:
        """The classification layer kept for checkpoint compatibility, or ``None`` if removed."""
        return None

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits: the classifier applied to :meth:`forward`'s features.

        x: float (B, in_channels, H, W). Returns float (B, num_classes).
        """
        head = self.get_classifier()
        if head is None:
            raise ValueError(
                f"{self._label()} has no classifier (it was created with num_classes=0)"
            )
        return head(self(x))

    def _upsample_if_small(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if min(h, w) >= self.min_input_size:
            return x
        scale = self.min_input_size / min(h, w)
        size = (
            max(self.min_input_size, math.ceil(h * scale)),
            max(self.min_input_size, math.ceil(w * scale)),
        )
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    def _label(self) -> str:
        return f"backbone {self.arch!r}" if self.arch else type(self).__name__


def check_head_options(num_classes: int, dropout: float | None = None) -> None:
    """Raise ValueError for a negative classifier size or a dropout outside [0, 1)."""
    if num_classes < 0:
        raise ValueError(f"num_classes must be >= 0 (0 drops the classifier), got {num_classes}")
    if dropout is not None and not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
