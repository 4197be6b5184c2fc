"""P x K batch sampler: P classes, K images each, for triplet mining inside a batch."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

__all__ = ["PKSampler"]


class PKSampler(Sampler[list[int]]):
    """Yield batches (lists of ``p * k`` dataset indices) of ``p`` distinct classes x ``k`` images.

    labels: int (N,) class of each dataset item.
    p: classes per batch (2 <= p <= number of classes, so every anchor has negatives).
    k: images per class; a class with fewer than ``k`` images is sampled with replacement.
    seed, epoch: batches are a pure function of (seed, epoch); call :meth:`set_epoch` each epoch.
    batches_per_epoch: default ``max(1, len(labels) // (p * k))``.

    Within a batch, the ``k`` images of a class are consecutive, classes in random order.
    """

    def __init__(
        self,
        labels: np.ndarray | Sequence[int],
        p: int,
        k: int,
        *,
        seed: int = 0,
        batches_per_epoch: int | None = None,
    ) -> None:
        arr = np.asarray(labels)
        if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
            raise ValueError(f"labels must be a 1-D integer array, got {arr.dtype} {arr.shape}")
        if k < 1:
            raise ValueError(f"k (images per class) must be >= 1, got {k}")
        self.classes, inverse = np.unique(arr, return_inverse=True)
        if self.classes.size < 2:
            raise ValueError(
                f"P x K sampling needs at least 2 classes to form negatives, labels hold {self.classes.size}"
            )
        if not 2 <= p <= self.classes.size:
            raise ValueError(
                f"p (classes per batch) must be in [2, {self.classes.size}] for these labels, got {p}"
            )
        if batches_per_epoch is not None and batches_per_epoch < 1:
            raise ValueError(f"batches_per_epoch must be >= 1, got {batches_per_epoch}")
        order = np.argsort(inverse, kind="stable")
        bounds = np.cumsum(np.bincount(inverse))
        self.members = np.split(order, bounds[:-1])
        self.p, self.k, self.seed, self.epoch = p, k, seed, 0
        self.batches_per_epoch = batches_per_epoch or max(1, arr.size // (p * k))

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches :meth:`__iter__` yields next."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        for _ in range(self.batches_per_epoch):
            batch: list[int] = []
            for c in rng.choice(self.classes.size, size=self.p, replace=False):
                members = self.members[c]
                pick = rng.choice(members, size=self.k, replace=members.size < self.k)
                batch.extend(int(i) for i in pick)
            yield batch
