"""A fixed projection head: the codes of a hashing method fitted on backbone features (ITQ, LSH).

Classical hashing fits a linear map on L2-normalised features without labels: a mean ``μ`` (F,),
a projection ``W`` (F, bits) (ITQ: the top principal directions; LSH: Gaussian hyperplanes) and a
rotation ``R`` (bits, bits) (ITQ's learned rotation; the identity for LSH). As a head, it turns a
pretrained backbone into a hashing network that encodes new images exactly as the method encoded
its database: ``(x / ||x|| − μ) W R``, in float64 like :class:`~deephash.hashing.ITQ`, whose
signs are the code bits. Nothing is trained; the learned state lives in buffers, so a checkpoint's
state dict carries it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ProjectionHead"]


class ProjectionHead(nn.Module):
    """``normalize(x) − mean`` (``x − mean`` with ``normalize=False``), then ``@ projection @
    rotation`` (float64); no parameters.

    forward: float (B, in_features) -> float32 (B, bits), whose signs are the codes. Built empty
    (zeros, identity rotation); :meth:`set_projection` or ``load_state_dict`` fills it.
    """

    unit_norm: torch.Tensor
    mean: torch.Tensor
    projection: torch.Tensor
    rotation: torch.Tensor

    def __init__(self, in_features: int, bits: int, *, normalize: bool = True) -> None:
        super().__init__()
        if in_features <= 0 or bits <= 0:
            raise ValueError(f"in_features and bits must be positive, got {in_features}, {bits}")
        # a buffer, so that the checkpoint says whether the method saw normalised features
        self.register_buffer("unit_norm", torch.tensor(bool(normalize)))
        self.register_buffer("mean", torch.zeros(in_features, dtype=torch.float64))
        self.register_buffer("projection", torch.zeros(in_features, bits, dtype=torch.float64))
        self.register_buffer("rotation", torch.eye(bits, dtype=torch.float64))

    def set_projection(
        self, mean: np.ndarray, projection: np.ndarray, rotation: np.ndarray | None = None
    ) -> ProjectionHead:
        """mean (F,), projection (F, bits), rotation (bits, bits) (None: the identity)."""
        shapes = (tuple(self.mean.shape), tuple(self.projection.shape))
        if (np.shape(mean), np.shape(projection)) != shapes:
            raise ValueError(
                f"expected mean {shapes[0]} and projection {shapes[1]}, got "
                f"{np.shape(mean)} and {np.shape(projection)}"
            )
        bits = self.projection.shape[1]
        rot = np.eye(bits) if rotation is None else np.asarray(rotation)
        if rot.shape != (bits, bits):
            raise ValueError(f"rotation must be ({bits}, {bits}), got {rot.shape}")
        for name, value in (("mean", mean), ("projection", projection), ("rotation", rot)):
            getattr(self, name).copy_(torch.as_tensor(np.asarray(value, dtype=np.float64)))
        return self

    @classmethod
    def from_hasher(cls, hasher: Any, *, normalize: bool = True) -> ProjectionHead:
        """The head of a fitted :class:`~deephash.hashing.ITQ` or :class:`~deephash.hashing.LSH`."""
        if hasattr(hasher, "rotation_"):
            mean, proj, rot = hasher.mean_, hasher.components_, hasher.rotation_
        elif hasattr(hasher, "planes_"):
            mean, proj, rot = hasher.mean_, hasher.planes_, None
        else:
            raise ValueError(f"{type(hasher).__name__} is not a fitted ITQ or LSH")
        head = cls(int(proj.shape[0]), int(proj.shape[1]), normalize=normalize)
        return head.set_projection(mean, proj, rot)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # normalised in float32 (as the features were when the method was fitted), projected in
        # float64 (as the method projects), so the signs match the method's codes
        z = F.normalize(x.float(), p=2, dim=1) if bool(self.unit_norm) else x.float()
        out = (z.double() - self.mean) @ self.projection @ self.rotation
        return out.float()
