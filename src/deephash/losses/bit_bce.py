"""Step 2 of two-step hashing (Zhuang et al., CVPR 2016, Sec. 3.2): fit the network's bit logits to
target codes with a per-bit binary cross-entropy. Step 1, inferring the target codes from triplet
constraints, is :class:`deephash.hashing.two_step.TripletCodeInference`."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from deephash.losses.base import LossOutput, MetricLoss, register_loss

__all__ = ["BitBCELoss", "TwoStepTargets"]


class TwoStepTargets:
    """Target codes of step 1, looked up by dataset sample index.

    codes: (n, bits) with entries > 0 meaning +1 (e.g. ``TripletCodeInference.codes_``).
    """

    def __init__(self, codes: np.ndarray | torch.Tensor) -> None:
        arr = codes.detach().cpu().numpy() if isinstance(codes, torch.Tensor) else np.asarray(codes)
        if arr.ndim != 2 or arr.shape[0] == 0:
            raise ValueError(f"target codes must be a non-empty (n, bits) array, got {arr.shape}")
        self.codes = torch.from_numpy(np.where(arr > 0, 1, -1).astype(np.int8))

    @property
    def bits(self) -> int:
        return int(self.codes.shape[1])

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """indices: int64 (B,) dataset indices. Returns float32 (B, bits) in {−1, +1} on their device."""
        if indices.ndim != 1:
            raise ValueError(f"sample indices must be (B,), got shape {tuple(indices.shape)}")
        idx = indices.long().cpu()
        if idx.numel() and (idx.min() < 0 or idx.max() >= len(self)):
            raise ValueError(
                f"sample indices must be in [0, {len(self)}), got [{int(idx.min())}, {int(idx.max())}]"
            )
        return self.codes[idx].to(device=indices.device, dtype=torch.float32)


@register_loss("bit-bce")
class BitBCELoss(MetricLoss):
    """Step 2: per-bit binary cross-entropy between bit logits and target codes.

    loss = mean over samples and bits of BCEWithLogits(logit_ir, (z_ir + 1) / 2).

    forward(logits float (B, bits), target) with target either target codes (B, bits) in
    {−1, +1} (or {0, 1}), or int64 dataset indices (B,) when the loss holds ``targets``.
    ``num_terms`` = B, ``active_fraction`` = 1.0 (no hinge).
    """

    def __init__(self, *, targets: TwoStepTargets | None = None) -> None:
        super().__init__()
        self.targets = targets

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        logits = embeddings
        if logits.ndim != 2:
            raise ValueError(f"logits must be (B, bits), got shape {tuple(logits.shape)}")
        if labels.ndim == 1:
            if self.targets is None:
                raise ValueError(
                    "bit-bce got (B,) indices but holds no targets; build it with "
                    "targets=TwoStepTargets(codes) or pass target codes (B, bits)"
                )
            codes = self.targets.lookup(labels)
        else:
            codes = labels
        if codes.shape != logits.shape:
            raise ValueError(
                f"target codes must match logits {tuple(logits.shape)}, got {tuple(codes.shape)}"
            )
        target = (codes > 0).to(device=logits.device, dtype=logits.dtype)
        loss = F.binary_cross_entropy_with_logits(logits, target)
        return LossOutput(loss=loss, num_terms=int(logits.shape[0]), active_fraction=1.0)
