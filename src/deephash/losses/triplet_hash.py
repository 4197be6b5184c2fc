"""Triplet selection shared by the triplet-based hashing losses (``dtsh``, ``dnnh``).

The hashing papers use *all* valid triplets of a mini-batch (anchor and positive share a label,
the negative does not). A loss may instead take a miner: any callable
``miner(embeddings (B, D), labels (B,))`` returning an object with int64 ``anchor``, ``positive``,
``negative`` tensors (``deephash.miners.Triplets``) or a plain 3-tuple of them; or the name of a
miner, resolved with ``deephash.miners.create_miner``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["TripletMinerLike", "all_triplets", "resolve_miner", "select_triplets"]

TripletMinerLike = Callable[[torch.Tensor, torch.Tensor], Any]


def all_triplets(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every valid triplet ``(a, p, n)`` of a batch: ``a != p``, ``y_a == y_p``, ``y_a != y_n``.

    labels: int (B,). Returns three int64 (T,) tensors on the labels' device, in lexicographic
    order of ``(a, p, n)``.
    """
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    pos = same & ~eye
    mask = pos[:, :, None] & ~same[:, None, :]
    a, p, n = mask.nonzero(as_tuple=True)
    return a, p, n


def resolve_miner(miner: TripletMinerLike | str | None) -> TripletMinerLike | None:
    """Turn a miner name into a miner object (``None`` and callables pass through)."""
    if miner is None or callable(miner):
        return miner
    if isinstance(miner, str):
        try:
            from deephash.miners import create_miner  # type: ignore[attr-defined]
        except ImportError as err:  # pragma: no cover - depends on the miners package
            raise ValueError(
                f"miner {miner!r} given by name but deephash.miners has no create_miner; "
                "pass a miner object or None (all triplets)"
            ) from err
        resolved: TripletMinerLike = create_miner(miner)
        return resolved
    raise ValueError(f"miner must be None, a name or a callable, got {type(miner).__name__}")


def select_triplets(
    embeddings: torch.Tensor, labels: torch.Tensor, miner: TripletMinerLike | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Triplet indices for a batch: all valid triplets when ``miner`` is None, else the miner's.

    embeddings: float (B, D); labels: int64 (B,). Returns three int64 (T,) tensors.
    The miner sees detached embeddings and runs without gradient.
    """
    if miner is None:
        return all_triplets(labels)
    with torch.no_grad():
        out = miner(embeddings.detach(), labels)
    if hasattr(out, "anchor"):
        a, p, n = out.anchor, out.positive, out.negative
    else:
        a, p, n = out
    dev = embeddings.device
    return a.to(dev).long(), p.to(dev).long(), n.to(dev).long()
