"""An instance network of its own: the instance bits from a backbone the class loss never touches.

With ``instance_backbone: own`` a hashing recipe trains two networks side by side: the class
network (backbone and hash head) learns only from the class loss, and this one — a backbone of the
same family (often narrower) and a linear head of ``instance_bits`` outputs — learns only from the
instance term. The class code is then exactly what the class recipe alone makes of it, and the
instance bits (an item's identity, a few bytes) need not share features trained to map a class
onto one point.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["InstanceNet"]


class InstanceNet(nn.Module):
    """``backbone`` (images (B, C, H, W) -> features (B, F)) then ``head`` (features -> (B,
    instance_dims)): the relaxed instance bits, whose sign is an item's binary descriptor."""

    def __init__(self, backbone: nn.Module, head: nn.Module, instance_dims: int) -> None:
        super().__init__()
        if instance_dims <= 0:
            raise ValueError(f"an instance network needs instance_dims > 0, got {instance_dims}")
        self.backbone = backbone
        self.head = head
        self.instance_dims = instance_dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.backbone(x))
        return out
