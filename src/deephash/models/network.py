"""The full retrieval network: a registered backbone followed by an embedding or hash head."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["RetrievalNet"]


class RetrievalNet(nn.Module):
    """``backbone`` (images (B, C, H, W) -> features (B, F)) then ``head`` (features -> (B, out_dim)).

    For metric learning the output is a float embedding (L2-normalised when the head says so); for
    hashing it is a relaxed code in (-1, 1) whose sign is the binary code.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, out_dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features before the head: (B, F)."""
        out: torch.Tensor = self.backbone(x)
        return out
