"""The full retrieval network: a registered backbone followed by an embedding or hash head."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["RetrievalNet"]


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; the backward pass multiplies the gradient by ``scale``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad * ctx.scale, None


class RetrievalNet(nn.Module):
    """``backbone`` (images (B, C, H, W) -> features (B, F)) then ``head`` (features -> (B, out_dim)).

    For metric learning the output is a float embedding (L2-normalised when the head says so); for
    hashing it is a relaxed code in (-1, 1) whose sign is the binary code.

    retrieve_from: ``"head"`` (default) or ``"backbone"``: the head is then a projection head, as in
    SimCLR: training (``model.train()``) returns the head's output for the loss, while evaluation
    (``model.eval()``: validation, encoding, indexing, serving) returns the L2-normalised backbone
    features (B, F), which keep more of what classes never seen in training need. ``out_dim`` is
    then F.

    instance_dims: extra head outputs after the first ``out_dim`` that the instance term alone
    trains (see :mod:`deephash.losses.instance`): training returns all ``out_dim + instance_dims``,
    evaluation only the first ``out_dim`` (the retrieval code), :meth:`with_instance` both parts.
    instance_backbone_grad: the share of the instance outputs' gradient that reaches the backbone
    (1: all; 0: the instance rows of the head learn on features the class loss alone shapes).
    instance_net: a network of its own for the instance outputs (images -> (B, instance_dims), see
    :class:`~deephash.models.instance_net.InstanceNet`); ``head`` then gives only the ``out_dim``
    retrieval outputs in every mode, training calls ``instance_net`` itself, and the class network
    never sees the instance term's gradient.
    """

    def __init__(
        self,
        backbone: nn.Module,
        head: nn.Module,
        out_dim: int,
        *,
        retrieve_from: str = "head",
        instance_dims: int = 0,
        instance_backbone_grad: float = 1.0,
        instance_net: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if instance_net is not None and not instance_dims:
            raise ValueError("an instance_net needs instance_dims > 0")
        if instance_dims < 0 or (instance_dims and retrieve_from != "head"):
            raise ValueError("instance_dims must be >= 0, and only with retrieve_from='head'")
        if not 0.0 <= instance_backbone_grad <= 1.0:
            raise ValueError(
                f"instance_backbone_grad must be in [0, 1], got {instance_backbone_grad}"
            )
        self.instance_dims = instance_dims
        self.instance_backbone_grad = float(instance_backbone_grad)
        if retrieve_from not in ("head", "backbone"):
            raise ValueError(f"retrieve_from must be head or backbone, got {retrieve_from!r}")
        self.backbone = backbone
        self.head = head
        self.instance_net = instance_net
        self.retrieve_from = retrieve_from
        if retrieve_from == "backbone":
            width = getattr(backbone, "out_features", None)  # nn.Module attributes are untyped
            if not isinstance(width, int):
                raise ValueError("retrieve_from=backbone needs a backbone with an int out_features")
            out_dim = width
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.from_features(self.backbone(x))

    def from_features(
        self, features: torch.Tensor, *, training: bool | None = None
    ) -> torch.Tensor:
        """What :meth:`forward` returns for backbone features (B, F): the head's output, or in
        eval mode with ``retrieve_from="backbone"`` the L2-normalised features.

        training: the mode to answer for (default: this module's own)."""
        training = self.training if training is None else training
        if self.retrieve_from == "backbone" and not training:
            return nn.functional.normalize(features, p=2, dim=1)
        out: torch.Tensor = self.head(features)
        if not self.instance_dims or self.instance_net is not None:
            return out
        if not training:
            return out[:, : self.out_dim]
        if self.instance_backbone_grad < 1.0:
            # the instance outputs again, from features whose gradient is scaled down: the
            # instance term trains its head rows fully and the shared backbone only that much
            scaled = _ScaleGrad.apply(features, self.instance_backbone_grad)
            instance: torch.Tensor = self.head(scaled)[:, self.out_dim :]
            out = torch.cat([out[:, : self.out_dim], instance], dim=1)
        return out

    def with_instance(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B, C, H, W) -> (retrieval output (B, out_dim), instance outputs (B,
        instance_dims)) in any mode: the head's extra outputs that only the instance term trains
        (an item's identity; (B, 0) when the network has none)."""
        out: torch.Tensor = self.head(self.backbone(x))
        if self.instance_net is not None:
            instance: torch.Tensor = self.instance_net(x)
            return out, instance
        return out[:, : self.out_dim], out[:, self.out_dim :]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features before the head: (B, F)."""
        out: torch.Tensor = self.backbone(x)
        return out
