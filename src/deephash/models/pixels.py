"""The raw-pixel "backbone": the normalised image itself, flattened, as the feature vector.

No parameters and no training: the floor every learned embedding has to beat (pixels with
Euclidean distance, LSH or ITQ on pixels), and the surprisingly strong baseline on classes never
seen in training. It takes the place of a backbone wherever one is named (``deephash features
--backbone pixels``, a study's ``method: features | lsh | itq`` rows).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from deephash.models.backbone import Backbone
from deephash.models.backbone_registry import register_backbone

__all__ = ["Pixels", "pixels"]


class Pixels(Backbone):
    """Flattened images: float (B, C, H, W) -> (B, C * S * S) with S = ``image_size`` (images of
    another size are first resized to S×S, bilinearly with antialiasing)."""

    def __init__(self, *, in_channels: int = 3, image_size: int = 28, arch: str | None = None):
        super().__init__()
        if image_size < 1 or in_channels < 1:
            raise ValueError(
                f"image_size and in_channels must be >= 1, got {image_size}, {in_channels}"
            )
        self.arch = arch
        self.in_channels = in_channels
        self.image_size = image_size
        self.out_features = in_channels * image_size * image_size

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.image_size, self.image_size):  # other sizes: resized, bilinear
            size = (self.image_size, self.image_size)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        return torch.flatten(x, 1)


@register_backbone("pixels")
def pixels(*, in_channels: int = 3, image_size: int = 28) -> Pixels:
    """The flattened normalised image (see :class:`Pixels`); no weights to load."""
    return Pixels(in_channels=in_channels, image_size=image_size, arch="pixels")
