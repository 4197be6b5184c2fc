"""Base classes, result types and registries for online miners.

A miner looks at one batch of embeddings ``(B, D)`` with labels ``(B,)`` and returns indices into
that batch: :class:`Triplets` ``(anchor, positive, negative)`` for triplet losses, :class:`Pairs`
``(a1, p, a2, n)`` (positive pairs ``(a1, p)``, negative pairs ``(a2, n)``) for pair losses.

The base class owns everything but the selection rule: it checks shapes and dtypes, moves labels
to the embeddings' device, detaches, runs under ``torch.no_grad()``, computes the ``(B, B)``
distance matrix once and the positive/negative masks, and hands them to ``mine()`` as a
:class:`MiningBatch`. A new miner writes only ``mine()``.

Conventions shared by every miner: ``positive`` means same label and a *different* index (an
embedding is never its own positive); ``negative`` means a different label; distances are
dissimilarities (smaller = closer), by default Euclidean on L2-normalized embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from deephash._registry import Registry
from deephash.distances import Distance, Metric
from deephash.miners.seeded_random import SeededRandom

__all__ = [
    "MINERS",
    "PAIR_MINERS",
    "MiningBatch",
    "PairMiner",
    "Pairs",
    "TripletMiner",
    "Triplets",
    "create_miner",
    "create_pair_miner",
    "list_miners",
    "list_pair_miners",
    "miner_options",
    "register_miner",
    "register_pair_miner",
]


class Triplets(NamedTuple):
    """Triplet indices into a batch: three int64 tensors of shape (T,)."""

    anchor: torch.Tensor
    positive: torch.Tensor
    negative: torch.Tensor


class Pairs(NamedTuple):
    """Pair indices into a batch: positive pairs ``(a1, p)`` (int64 (P,) each) and negative
    pairs ``(a2, n)`` (int64 (N,) each)."""

    a1: torch.Tensor
    p: torch.Tensor
    a2: torch.Tensor
    n: torch.Tensor


@dataclass(frozen=True)
class MiningBatch:
    """What ``mine()`` receives.

    dist: float (B, B) distances (no grad); diagonal exactly 0.
    labels: int64 (B,) on ``dist.device``.
    positive_mask: bool (B, B), ``labels[i] == labels[j] and i != j``.
    negative_mask: bool (B, B), ``labels[i] != labels[j]``.
    embedding_dim: D, the embeddings' dimension (the distance-weighted miner needs it).
    """

    dist: torch.Tensor
    labels: torch.Tensor
    positive_mask: torch.Tensor
    negative_mask: torch.Tensor
    embedding_dim: int

    @property
    def size(self) -> int:
        """Batch size B."""
        return int(self.dist.shape[0])

    def positive_pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All ordered anchor-positive pairs ``(a, p)``, int64 (P,) each, row-major order."""
        a, p = self.positive_mask.nonzero(as_tuple=True)
        return a, p


class _Miner:
    """Settings and input checks shared by triplet and pair miners."""

    def __init__(self, *, metric: Metric = "euclidean", normalize: bool = True) -> None:
        self.distance = Distance(metric, normalize)

    def set_progress(self, fraction: float) -> None:
        """Tell the miner how far training is, in [0, 1]; a no-op except for scheduled miners."""
        _check_fraction(fraction)

    def reseed(self, seed: int) -> None:
        """Restart the miner's random stream from ``seed`` (random miners only; a no-op otherwise).

        The trainer calls this at every epoch start with a seed derived from (run seed, epoch), so
        that a resumed run draws the same triplets as an uninterrupted one.
        """
        if hasattr(self, "_rng"):
            self._rng = SeededRandom(seed)

    def _prepare(self, embeddings: torch.Tensor, labels: torch.Tensor) -> MiningBatch:
        if not isinstance(embeddings, torch.Tensor) or embeddings.ndim != 2:
            shape = tuple(embeddings.shape) if isinstance(embeddings, torch.Tensor) else None
            raise ValueError(f"embeddings must be a float tensor (B, D), got shape {shape}")
        if not embeddings.is_floating_point():
            raise ValueError(f"embeddings must be floating point, got dtype {embeddings.dtype}")
        labels = torch.as_tensor(labels)
        if labels.ndim != 1 or labels.shape[0] != embeddings.shape[0]:
            raise ValueError(
                f"labels must be (B,) with B={embeddings.shape[0]}, got shape {tuple(labels.shape)}"
            )
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise ValueError(f"labels must be integer class ids, got dtype {labels.dtype}")
        if not bool(torch.isfinite(embeddings).all()):
            raise ValueError("embeddings contain NaN or inf; check the model's output")
        labels = labels.to(device=embeddings.device, dtype=torch.long)
        dist = self.distance.matrix(embeddings.detach())
        same = labels[:, None] == labels[None, :]
        eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
        return MiningBatch(dist, labels, same & ~eye, ~same, int(embeddings.shape[1]))

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({settings})"


class TripletMiner(_Miner):
    """Base class of triplet miners: call ``miner(embeddings, labels) -> Triplets``.

    embeddings: float (B, D), any device (detached inside); labels: int (B,).
    Returns :class:`Triplets` of int64 (T,) tensors on the embeddings' device; T may be 0.
    Subclasses implement ``mine(batch: MiningBatch) -> Triplets``.
    """

    def __call__(self, embeddings: torch.Tensor, labels: torch.Tensor) -> Triplets:
        with torch.no_grad():
            out = self.mine(self._prepare(embeddings, labels))
        return Triplets(*(t.long() for t in out))

    def mine(self, batch: MiningBatch) -> Triplets:
        raise NotImplementedError


class PairMiner(_Miner):
    """Base class of pair miners: call ``miner(embeddings, labels) -> Pairs``.

    embeddings: float (B, D); labels: int (B,). Returns :class:`Pairs` of int64 tensors.
    Subclasses implement ``mine(batch: MiningBatch) -> Pairs``.
    """

    def __call__(self, embeddings: torch.Tensor, labels: torch.Tensor) -> Pairs:
        with torch.no_grad():
            out = self.mine(self._prepare(embeddings, labels))
        return Pairs(*(t.long() for t in out))

    def mine(self, batch: MiningBatch) -> Pairs:
        raise NotImplementedError


def _check_fraction(fraction: float) -> None:
    if not 0.0 <= float(fraction) <= 1.0:
        raise ValueError(f"progress fraction must be in [0, 1], got {fraction}")


MINERS: Registry[TripletMiner] = Registry("miner")
"""Every registered triplet miner, by name."""
PAIR_MINERS: Registry[PairMiner] = Registry("pair miner")
"""Every registered pair miner, by name."""

register_miner = MINERS.register
"""Class decorator: make a triplet miner creatable by ``create_miner(name, **options)``."""
register_pair_miner = PAIR_MINERS.register
"""Class decorator: make a pair miner creatable by ``create_pair_miner(name, **options)``."""


def list_miners(pattern: str = "*") -> list[str]:
    """Registered triplet-miner names matching a shell-style pattern, sorted."""
    return MINERS.names(pattern)


def list_pair_miners(pattern: str = "*") -> list[str]:
    """Registered pair-miner names matching a shell-style pattern, sorted."""
    return PAIR_MINERS.names(pattern)


def create_miner(name: str, **options: Any) -> TripletMiner:
    """Create a registered triplet miner by name, e.g. ``create_miner("semi-hard", margin=0.2)``.

    Unknown names or options raise ``ValueError`` listing what exists.
    """
    return MINERS.create(name, **options)


def create_pair_miner(name: str, **options: Any) -> PairMiner:
    """Create a registered pair miner by name, e.g. ``create_pair_miner("hard-pairs")``."""
    return PAIR_MINERS.create(name, **options)


def miner_options(name: str) -> dict[str, Any]:
    """Keyword options (name -> default) that triplet or pair miner ``name`` accepts."""
    registry: Registry[Any] = MINERS if name in MINERS else PAIR_MINERS
    if name not in registry:
        known = ", ".join(list_miners() + list_pair_miners())
        raise ValueError(f"unknown miner {name!r}; available: {known}")
    return {k: p.default for k, p in registry.options(name).items()}
