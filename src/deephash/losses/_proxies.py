"""Checks shared by the losses that own one learned vector per class (private)."""

from __future__ import annotations

import torch

__all__ = ["check_class_batch", "check_sizes"]


def check_sizes(embedding_dim: int, num_classes: int) -> None:
    """Raise a ValueError unless embedding_dim >= 1 and num_classes >= 2."""
    if embedding_dim < 1 or num_classes < 2:
        raise ValueError(
            f"need embedding_dim >= 1 and num_classes >= 2, got {embedding_dim}, {num_classes}"
        )


def check_class_batch(
    embeddings: torch.Tensor, labels: torch.Tensor, embedding_dim: int, num_classes: int
) -> None:
    """Raise a ValueError when embeddings (B, D) or labels (B,) do not fit the class vectors."""
    if embeddings.shape[1] != embedding_dim:
        raise ValueError(
            f"embeddings have D={embeddings.shape[1]} but the loss was built for "
            f"embedding_dim={embedding_dim}"
        )
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes}), got [{int(labels.min())}, "
            f"{int(labels.max())}]; set num_classes to the number of training classes"
        )
