"""Offline sampling baseline: random index triplets / pairs, fixed per epoch by (seed, epoch).

Unlike online miners, these choose *which images* to load: a trainer iterates a
:class:`RandomTripletDataset` (or :class:`RandomPairDataset`) in batches of index rows, loads the
images those indices name, embeds them once (``localize`` maps the rows onto the unique images)
and feeds the same losses through ``loss.compute_triplets`` / ``loss.compute_pairs``.

Sampling (uniform, with replacement across items, as the classic offline triplet setups do):

- triplets: anchor uniform over the samples whose class has at least two members; positive
  uniform over the *other* members of the anchor's class; negative uniform over the samples of
  all other classes.
- pairs: ``round(num_pairs · positive_fraction)`` positive pairs (anchor as above, partner
  uniform over the other members of its class) and the rest negative (anchor uniform over all
  samples, partner uniform over the other classes), then shuffled.

Everything for epoch ``e`` comes from ``numpy.random.default_rng([seed, e])``: the same seed and
epoch always give the same items, independent of access order or worker count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["RandomPairDataset", "RandomTripletDataset", "localize"]


class _ClassIndex:
    """Samples grouped by label: ``order`` sorts indices by label, class c occupies
    ``order[start[c] : start[c] + count[c]]``."""

    def __init__(self, labels: np.ndarray) -> None:
        self.labels = labels
        self.order = np.argsort(labels, kind="stable")
        _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
        self.cls = inverse.reshape(-1)  # class id (0..C-1) per sample
        self.count = counts
        self.start = np.concatenate([[0], np.cumsum(counts)[:-1]])
        # position of each sample inside its class block
        self.rank = np.empty(labels.shape[0], dtype=np.int64)
        self.rank[self.order] = np.arange(labels.shape[0]) - self.start[self.cls[self.order]]

    @property
    def size(self) -> int:
        return int(self.labels.shape[0])

    def other_member(self, anchors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A uniform same-class sample != anchor, for each anchor (class size must be >= 2)."""
        c = self.cls[anchors]
        k = self.count[c]
        shift = 1 + rng.integers(0, k - 1)  # 1..k-1: never the anchor itself
        return self.order[self.start[c] + (self.rank[anchors] + shift) % k]

    def other_class(self, anchors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A uniform sample of any other class, for each anchor."""
        c = self.cls[anchors]
        u = rng.integers(0, self.size - self.count[c])
        # skip over the anchor's own class block in label-sorted order
        u = np.where(u >= self.start[c], u + self.count[c], u)
        return self.order[u]


def _check_labels(labels: Sequence[int] | np.ndarray | torch.Tensor) -> np.ndarray:
    arr = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"labels must be integer class ids, got dtype {arr.dtype}")
    if np.unique(arr).size < 2:
        raise ValueError("labels hold a single class: negatives are impossible")
    return arr.astype(np.int64)


def _check_count(name: str, value: int) -> int:
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


class _EpochDataset(Dataset[Any]):
    def __init__(self, labels: Any, seed: int) -> None:
        self._index = _ClassIndex(_check_labels(labels))
        self.seed = int(seed)
        self.epoch = 0
        self._rows: np.ndarray | None = None

    def set_epoch(self, epoch: int) -> None:
        """Draw the items of ``epoch`` (call once per epoch, before iterating)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)
        self._rows = None

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch])

    def _draw(self) -> np.ndarray:
        raise NotImplementedError

    @property
    def rows(self) -> np.ndarray:
        """All items of the current epoch, int64 (N, 3)."""
        if self._rows is None:
            self._rows = self._draw()
        return self._rows

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(self.rows[i])


class RandomTripletDataset(_EpochDataset):
    """Random index triplets ``(anchor, positive, negative)`` into a labelled set.

    labels: int (N,) class id per sample; num_triplets: items per epoch; seed: base seed.
    Item i: int64 tensor (3,) = (anchor, positive, negative) sample indices. ``rows`` gives the
    whole epoch as int64 (num_triplets, 3). ``set_epoch(e)`` redraws (default epoch 0).
    """

    def __init__(self, labels: Any, num_triplets: int, seed: int = 0) -> None:
        super().__init__(labels, seed)
        self.num_triplets = _check_count("num_triplets", num_triplets)
        idx = self._index
        self._eligible = np.flatnonzero(idx.count[idx.cls] >= 2)
        if self._eligible.size == 0:
            raise ValueError("every class has a single sample: no anchor-positive pair exists")

    def _draw(self) -> np.ndarray:
        rng = self._rng()
        anchor = self._eligible[rng.integers(0, self._eligible.size, self.num_triplets)]
        positive = self._index.other_member(anchor, rng)
        negative = self._index.other_class(anchor, rng)
        return np.stack([anchor, positive, negative], axis=1).astype(np.int64)


class RandomPairDataset(_EpochDataset):
    """Random index pairs ``(i, j, same)`` into a labelled set: ``same`` is 1 for a positive
    pair (same class, i != j) and 0 for a negative pair.

    labels: int (N,); num_pairs: items per epoch; seed: base seed; positive_fraction: share of
    positive pairs in [0, 1] (exactly ``round(num_pairs · positive_fraction)`` of them).
    Item i: int64 tensor (3,). ``rows``: int64 (num_pairs, 3). ``set_epoch(e)`` redraws.
    """

    def __init__(
        self, labels: Any, num_pairs: int, seed: int = 0, positive_fraction: float = 0.5
    ) -> None:
        super().__init__(labels, seed)
        self.num_pairs = _check_count("num_pairs", num_pairs)
        if not 0.0 <= positive_fraction <= 1.0:
            raise ValueError(f"positive_fraction must be in [0, 1], got {positive_fraction}")
        self.positive_fraction = float(positive_fraction)
        idx = self._index
        self._eligible = np.flatnonzero(idx.count[idx.cls] >= 2)
        if self.num_positive > 0 and self._eligible.size == 0:
            raise ValueError(
                "every class has a single sample: positive pairs are impossible; "
                "use positive_fraction=0"
            )

    @property
    def num_positive(self) -> int:
        """Positive pairs per epoch."""
        return round(self.num_pairs * self.positive_fraction)

    def _draw(self) -> np.ndarray:
        rng = self._rng()
        n_pos = self.num_positive
        n_neg = self.num_pairs - n_pos
        a_pos = self._eligible[rng.integers(0, max(1, self._eligible.size), n_pos)]
        p = self._index.other_member(a_pos, rng)
        a_neg = rng.integers(0, self._index.size, n_neg)
        n = self._index.other_class(a_neg, rng)
        rows = np.concatenate(
            [
                np.stack([a_pos, p, np.ones(n_pos, dtype=np.int64)], axis=1),
                np.stack([a_neg, n, np.zeros(n_neg, dtype=np.int64)], axis=1),
            ]
        ).astype(np.int64)
        return rows[rng.permutation(rows.shape[0])]


def localize(rows: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Map dataset index rows onto the unique samples they use.

    rows: int (T, k) sample indices (e.g. a batch of triplets, k = 3, or the first two columns of
    pair rows). Returns ``unique`` int64 (U,) sorted sample indices to load and embed, and
    ``local`` int64 (T, k) with ``unique[local] == rows``: embed ``unique`` to ``emb`` (U, D), then
    ``loss.compute_triplets(emb, *local.T)``.
    """
    t = torch.as_tensor(rows)
    if t.ndim != 2 or t.is_floating_point():
        raise ValueError(f"rows must be an integer (T, k) array, got shape {tuple(t.shape)}")
    unique, inverse = torch.unique(t.long(), return_inverse=True)
    return unique, inverse
