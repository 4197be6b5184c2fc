"""The batches of one training epoch: which training images each step sees, and for offline
sampling the triplets or pairs among them. Re-seeded from (seed, epoch) so that every epoch, and
a resumed run, draws the same batches."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["SAMPLINGS", "Batch", "Batches"]

SAMPLINGS = ("pk", "random", "offline-triplets", "offline-pairs")


@dataclass
class Batch:
    """One training batch: ``images`` indexes the training split; offline sampling adds indices
    into that batch: ``triplets`` (3, T), or ``pairs`` = (a1, p, a2, n) positive and negative pairs."""

    images: np.ndarray
    triplets: np.ndarray | None = None
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None


class Batches:
    """Iterable of :class:`Batch` for one epoch; ``set_epoch`` re-seeds it deterministically.

    labels: int (n,) training labels. sampling: ``"pk"`` (P classes × K images, Hermans et al.),
    ``"random"`` (a shuffled pass, ``batch_size`` images per batch), ``"offline-triplets"`` or
    ``"offline-pairs"`` (random triplets / pairs drawn ahead, ``batch_size`` per batch).
    batches_per_epoch: None = one pass over the data. rank: the DDP rank; each rank draws its own
    stream from ``seed + 100_003 * rank``.
    """

    def __init__(
        self,
        labels: np.ndarray,
        *,
        sampling: str,
        batch_size: int,
        p: int,
        k: int,
        batches_per_epoch: int | None,
        seed: int,
        rank: int = 0,
    ) -> None:
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {list(SAMPLINGS)}, got {sampling!r}")
        self.labels = np.asarray(labels)
        self.sampling = sampling
        self.batch_size = batch_size
        self.rank = rank
        self.epoch = 0
        seed = seed + 100_003 * rank
        if sampling == "pk":
            from deephash.data.pk_sampler import PKSampler

            self.sampler: Any = PKSampler(
                self.labels, p, k, seed=seed, batches_per_epoch=batches_per_epoch
            )
            self._len = len(self.sampler)
        elif sampling == "random":
            self._len = batches_per_epoch or len(self.labels) // batch_size
        else:
            from deephash.data.offline import RandomPairDataset, RandomTripletDataset

            n_batches = batches_per_epoch or len(self.labels) // batch_size
            n = n_batches * batch_size
            if sampling == "offline-triplets":
                self.sampler = RandomTripletDataset(self.labels, num_triplets=n, seed=seed)
            else:
                self.sampler = RandomPairDataset(self.labels, num_pairs=n, seed=seed)
            self._len = n_batches
        self._seed = seed

    def __len__(self) -> int:
        return self._len

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if self.sampling != "random":
            self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[Batch]:
        size = self.batch_size
        if self.sampling == "pk":
            for idx in self.sampler:
                yield Batch(images=np.asarray(idx, dtype=np.int64))
        elif self.sampling == "random":
            rng = np.random.default_rng([self._seed, self.epoch])
            perm = rng.permutation(len(self.labels))
            for b in range(self._len):
                yield Batch(images=perm[b * size : (b + 1) * size])
        else:
            rows = np.asarray(self.sampler.rows)
            for b in range(self._len):
                chunk = rows[b * size : (b + 1) * size]
                if self.sampling == "offline-triplets":
                    uniq, inv = np.unique(chunk[:, :3], return_inverse=True)
                    yield Batch(images=uniq, triplets=inv.reshape(-1, 3).T)
                else:
                    uniq, inv = np.unique(chunk[:, :2], return_inverse=True)
                    local = inv.reshape(-1, 2)
                    pos = chunk[:, 2] == 1
                    yield Batch(
                        images=uniq,
                        pairs=(local[pos, 0], local[pos, 1], local[~pos, 0], local[~pos, 1]),
                    )
