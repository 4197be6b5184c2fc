"""Quantization terms for relaxed codes and a wrapper that adds them to any metric loss.

All terms take relaxed codes ``u`` float (B, bits) and return a scalar tensor:

- :func:`quantization_error`: ``mean_i ||sign(u_i) − u_i||²`` (summed over bits, averaged over
  samples), the term of DTSH (Wang et al. 2016, Sec. 3.3) and ITQ (Gong & Lazebnik 2011, Eq. 2).
  ``sign`` maps 0 to +1 and is treated as a constant (no gradient flows through it).
- :func:`bit_balance`: ``mean_r (mean_i u_ir)²`` — each bit should be +1 on half the samples
  (the balance criterion of spectral hashing, Weiss et al. 2008).
- :func:`bit_decorrelation`: ``||UᵀU / B − I||_F² / bits²`` — bits should be uncorrelated with unit
  second moment (the independence criterion of spectral hashing; its off-diagonal part pushes bits
  apart).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from deephash.losses.base import LossOutput, MetricLoss, create_loss, register_loss

__all__ = [
    "TripletQuantizationLoss",
    "bit_balance",
    "bit_decorrelation",
    "quantization_error",
]


def _check_codes(u: torch.Tensor) -> None:
    if u.ndim != 2:
        raise ValueError(f"relaxed codes must be (B, bits), got shape {tuple(u.shape)}")


def quantization_error(u: torch.Tensor) -> torch.Tensor:
    """``mean_i ||sign(u_i) − u_i||²``; u: float (B, bits). Returns a float scalar (0 for B = 0)."""
    _check_codes(u)
    if u.shape[0] == 0:
        return u.sum() * 0.0
    b = torch.where(u >= 0, torch.ones_like(u), -torch.ones_like(u)).detach()
    return ((b - u) ** 2).sum(dim=1).mean()


def bit_balance(u: torch.Tensor) -> torch.Tensor:
    """``mean_r (mean_i u_ir)²``; u: float (B, bits). Returns a float scalar in [0, 1] for |u| <= 1."""
    _check_codes(u)
    if u.shape[0] == 0:
        return u.sum() * 0.0
    return (u.mean(dim=0) ** 2).mean()


def bit_decorrelation(u: torch.Tensor) -> torch.Tensor:
    """``||UᵀU / B − I||_F² / bits²``; u: float (B, bits). Returns a float scalar."""
    _check_codes(u)
    if u.shape[0] == 0:
        return u.sum() * 0.0
    bsz, bits = u.shape
    gram = u.T @ u / bsz
    eye = torch.eye(bits, dtype=u.dtype, device=u.device)
    return ((gram - eye) ** 2).sum() / bits**2


@register_loss("triplet-quant")
class TripletQuantizationLoss(MetricLoss):
    """Any metric loss on relaxed codes plus quantization, balance and decorrelation terms.

    loss = base(u, labels) + lam · quantization_error(u) + mu · bit_balance(u)
           + nu · bit_decorrelation(u)

    base: a :class:`MetricLoss` or a registered loss name (created with ``base_options``), e.g.
    ``"batch-hard"``. ``lam``, ``mu``, ``nu`` are plain float attributes a schedule may change.
    ``num_terms`` and ``active_fraction`` are the base loss's.
    """

    def __init__(
        self,
        base: MetricLoss | str,
        *,
        lam: float = 0.1,
        mu: float = 0.0,
        nu: float = 0.0,
        base_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if isinstance(base, str):
            base = create_loss(base, **dict(base_options or {}))
        elif base_options:
            raise ValueError("base_options only apply when base is given by name")
        if not isinstance(base, MetricLoss):
            raise ValueError(f"base must be a MetricLoss or a loss name, got {type(base).__name__}")
        for name, value in (("lam", lam), ("mu", mu), ("nu", nu)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        self.base = base
        self.lam = float(lam)
        self.mu = float(mu)
        self.nu = float(nu)

    def compute(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        out = self.base(embeddings, labels)
        loss = out.loss + self.lam * quantization_error(embeddings)
        if self.mu:
            loss = loss + self.mu * bit_balance(embeddings)
        if self.nu:
            loss = loss + self.nu * bit_decorrelation(embeddings)
        return LossOutput(loss=loss, num_terms=out.num_terms, active_fraction=out.active_fraction)
