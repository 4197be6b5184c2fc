"""Heads: map backbone features to a metric embedding or to relaxed hash codes.

Every hash head returns float ``(B, bits)`` values in ``[-1, 1]`` (except ``HashHead(kind="linear")``,
which returns unbounded values/logits), so that encoding is always ``deephash.codes.sign`` followed
by ``pack_bits``, whatever the head.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from deephash._registry import Registry

__all__ = [
    "HEADS",
    "DivideEncodeHead",
    "EmbeddingHead",
    "HashHead",
    "create_head",
    "list_heads",
    "sign_ste",
]

HashKind = Literal["tanh", "linear", "sign-ste"]


def _check_sizes(in_features: int, out_dim: int, out_name: str) -> None:
    if isinstance(in_features, bool) or not isinstance(in_features, int) or in_features <= 0:
        raise ValueError(f"in_features must be a positive int, got {in_features!r}")
    if isinstance(out_dim, bool) or not isinstance(out_dim, int) or out_dim <= 0:
        raise ValueError(f"{out_name} must be a positive int, got {out_dim!r}")


class _SignSTE(torch.autograd.Function):
    """sign in the forward pass, identity gradient in the backward pass (straight-through)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad


def sign_ste(x: torch.Tensor) -> torch.Tensor:
    """Straight-through sign: forward ``{-1, +1}`` (0 maps to +1, like ``codes.sign``), backward identity.

    x: float tensor of any shape. Returns a tensor of the same shape and dtype.
    """
    out: torch.Tensor = _SignSTE.apply(x)
    return out


class EmbeddingHead(nn.Module):
    """Linear projection for metric learning, optionally L2-normalized.

    forward: float (B, in_features) -> float (B, dim); rows have unit L2 norm when ``normalize``.
    """

    def __init__(self, in_features: int, dim: int, *, normalize: bool = True) -> None:
        super().__init__()
        _check_sizes(in_features, dim, "dim")
        self.fc = nn.Linear(in_features, dim)
        self.normalize = normalize

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.fc(x)
        return F.normalize(z, p=2, dim=1) if self.normalize else z


class HashHead(nn.Module):
    """Linear layer followed by a relaxation of ``sign``.

    kind:
      - ``"tanh"``: ``tanh(beta * (W x + b))``, relaxed codes in (-1, 1). ``beta`` is a plain float
        attribute, so a schedule can raise it during training (continuation, as in HashNet).
      - ``"linear"``: ``W x + b`` unbounded (DSH's output layer, or per-bit logits for the two-step
        ``bit-bce`` loss); ``sign`` of it is the code.
      - ``"sign-ste"``: ``sign(tanh(W x + b))`` with a straight-through gradient (the backward pass
        uses the derivative of ``tanh``), so the loss sees exact binary codes in training and in
        evaluation.

    forward: float (B, in_features) -> float (B, bits).
    """

    def __init__(
        self, in_features: int, bits: int, *, kind: HashKind = "tanh", beta: float = 1.0
    ) -> None:
        super().__init__()
        _check_sizes(in_features, bits, "bits")
        if kind not in ("tanh", "linear", "sign-ste"):
            raise ValueError(f"unknown hash head kind {kind!r}; use 'tanh', 'linear' or 'sign-ste'")
        if beta <= 0:
            raise ValueError(f"beta must be positive, got {beta}")
        self.fc = nn.Linear(in_features, bits)
        self.kind = kind
        self.beta = float(beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.fc(x)
        if self.kind == "linear":
            return z
        if self.kind == "tanh":
            return torch.tanh(self.beta * z)
        return sign_ste(torch.tanh(self.beta * z))


class _ThresholdSTE(torch.autograd.Function):
    """DNNH's piece-wise threshold; the backward pass treats it as the identity."""

    @staticmethod
    def forward(ctx: Any, s: torch.Tensor, eps: float) -> torch.Tensor:
        return _threshold(s, eps)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


def _threshold(s: torch.Tensor, eps: float) -> torch.Tensor:
    # Lai et al. 2015, Sec. 3.2: g(s) = 0 if s < 0.5 - eps, s if 0.5 - eps <= s <= 0.5 + eps, else 1.
    zero = torch.zeros_like(s)
    one = torch.ones_like(s)
    return torch.where(s < 0.5 - eps, zero, torch.where(s > 0.5 + eps, one, s))


class DivideEncodeHead(nn.Module):
    """DNNH's divide-and-encode module (Lai, Pan, Liu & Yan, CVPR 2015, Sec. 3.2).

    The feature vector is divided into ``bits`` equal slices; slice ``r`` is fully connected to one
    unit only (so bit ``r`` depends on slice ``r`` only, which reduces redundancy between bits),
    followed by a sigmoid and the piece-wise threshold ``g(s) = 0 if s < 0.5 - eps, s if
    0.5 - eps <= s <= 0.5 + eps, 1 if s > 0.5 + eps``. For a uniform interface with the other hash
    heads the output ``g`` in [0, 1] is mapped to ``2 g - 1`` in [-1, 1]; the ``dnnh`` loss maps it
    back to [0, 1] before applying the paper's margin.

    When ``in_features`` is not a multiple of ``bits`` the features are zero-padded at the end to
    ``bits * ceil(in_features / bits)``, so the last slices are a little shorter in effect.

    ``straight_through=True`` (default) passes the gradient through the threshold as if it were the
    identity: the exact derivative is 0 for every saturated unit, which stops training of those
    bits. ``False`` uses the exact derivative.

    forward: float (B, in_features) -> float (B, bits) in [-1, 1].
    """

    def __init__(
        self, in_features: int, bits: int, *, eps: float = 0.1, straight_through: bool = True
    ) -> None:
        super().__init__()
        _check_sizes(in_features, bits, "bits")
        if not 0.0 <= eps <= 0.5:
            raise ValueError(f"eps must be in [0, 0.5], got {eps}")
        self.in_features = in_features
        self.bits = bits
        self.slice_len = -(-in_features // bits)
        self.pad = self.slice_len * bits - in_features
        self.eps = float(eps)
        self.straight_through = straight_through
        # weight[r] connects slice r to unit r only; init like nn.Linear(slice_len, 1).
        bound = 1.0 / self.slice_len**0.5
        self.weight = nn.Parameter(torch.empty(bits, self.slice_len).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(bits).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"expected features of shape (B, {self.in_features}), got {tuple(x.shape)}"
            )
        if self.pad:
            x = F.pad(x, (0, self.pad))
        slices = x.view(x.shape[0], self.bits, self.slice_len)
        s = torch.sigmoid((slices * self.weight).sum(dim=2) + self.bias)
        g = _ThresholdSTE.apply(s, self.eps) if self.straight_through else _threshold(s, self.eps)
        out: torch.Tensor = 2.0 * g - 1.0
        return out


HEADS: Registry[nn.Module] = Registry("head")
"""Every head by name: ``HEADS.get(kind)(in_features, out_dim, **opts)`` builds one."""


def _projection(in_features: int, out_dim: int, **opts: Any) -> nn.Module:
    from deephash.models.projection_head import ProjectionHead

    return ProjectionHead(in_features, out_dim, **opts)


def _hash_head(kind: HashKind) -> Callable[..., nn.Module]:
    def make(in_features: int, out_dim: int, **opts: Any) -> nn.Module:
        return HashHead(in_features, out_dim, kind=kind, **opts)

    return make


HEADS.add("divide-encode", DivideEncodeHead)
HEADS.add("embedding", EmbeddingHead)
for _kind in get_args(HashKind):
    HEADS.add(_kind, _hash_head(_kind))
HEADS.add("projection", _projection)


def list_heads() -> list[str]:
    """Names accepted by :func:`create_head`, sorted."""
    return HEADS.names()


def create_head(kind: str, in_features: int, out_dim: int, **opts: Any) -> nn.Module:
    """Create a head by name.

    kind: ``"embedding"`` (:class:`EmbeddingHead`, opts: ``normalize``), ``"tanh"``, ``"linear"``,
    ``"sign-ste"`` (:class:`HashHead`, opts: ``beta``) or ``"divide-encode"``
    (:class:`DivideEncodeHead`, opts: ``eps``, ``straight_through``) or ``"projection"``
    (:class:`~deephash.models.projection_head.ProjectionHead`: a fitted ITQ / LSH, not trained).
    ``out_dim`` is the embedding dimension or the number of bits.
    """
    return HEADS.get(kind)(in_features, out_dim, **opts)
