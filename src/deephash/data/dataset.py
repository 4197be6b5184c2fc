"""In-memory labelled image arrays: the one dataset type every reader returns."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["ArrayDataset", "PooledDataset", "to_float_image"]

Transform = Callable[[torch.Tensor], torch.Tensor]


def to_float_image(image: torch.Tensor) -> torch.Tensor:
    """uint8 (H, W) or (H, W, C) -> float32 (C, H, W) in [0, 1]."""
    if image.ndim == 2:
        image = image.unsqueeze(-1)
    return image.permute(2, 0, 1).to(torch.float32).div_(255.0)


def _as_view_index(indices: np.ndarray) -> slice | np.ndarray:
    """A slice when ``indices`` is a contiguous increasing run, so subsetting gives a view."""
    if indices.size and indices[-1] - indices[0] == indices.size - 1:
        if indices.size == 1 or bool(np.all(np.diff(indices) == 1)):
            return slice(int(indices[0]), int(indices[-1]) + 1)
    return indices


class ArrayDataset(Dataset[tuple[torch.Tensor, int]]):
    """Labelled images held as one uint8 array.

    images: uint8 (N, H, W) for grey images or (N, H, W, C) for colour images.
    labels: int64 (N,) class ids in ``[0, len(class_names))``.
    class_names: one name per class id.
    transform: maps a uint8 tensor (H, W) / (H, W, C) to float (C, H, W); defaults to
        :func:`to_float_image` (scale to [0, 1], no normalization).

    ``dataset[i]`` returns ``(float tensor (C, H, W), int label)``.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        class_names: Sequence[str],
        transform: Transform | None = None,
    ) -> None:
        images = np.asarray(images)
        labels = np.asarray(labels)
        if images.dtype != np.uint8:
            raise ValueError(f"images must be uint8, got {images.dtype}")
        if images.ndim not in (3, 4):
            raise ValueError(
                f"images must have shape (N, H, W) or (N, H, W, C), got {images.shape}"
            )
        if images.ndim == 4 and images.shape[-1] not in (1, 3):
            raise ValueError(
                f"images must be channel-last with 1 or 3 channels, got {images.shape}"
            )
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise ValueError(
                f"labels must have shape ({images.shape[0]},) to match images, got {labels.shape}"
            )
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be integers, got {labels.dtype}")
        labels = labels.astype(np.int64, copy=False)
        if labels.size and (labels.min() < 0 or labels.max() >= len(class_names)):
            raise ValueError(
                f"labels must lie in [0, {len(class_names)}) (one id per class name), "
                f"got range [{labels.min()}, {labels.max()}]"
            )
        self.images = images
        self.labels = labels
        self.class_names = list(class_names)
        self.transform = transform

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = torch.from_numpy(np.ascontiguousarray(self.images[index]))
        out = self.transform(image) if self.transform is not None else to_float_image(image)
        return out, int(self.labels[index])

    @property
    def num_classes(self) -> int:
        """Number of class names (ids may be absent from a subset)."""
        return len(self.class_names)

    @property
    def in_channels(self) -> int:
        """1 for grey (N, H, W) images, else the size of the channel axis."""
        return 1 if self.images.ndim == 3 else int(self.images.shape[-1])

    @property
    def image_shape(self) -> tuple[int, int]:
        """(H, W) of every image."""
        return int(self.images.shape[1]), int(self.images.shape[2])

    def subset(self, indices: np.ndarray | Sequence[int]) -> ArrayDataset:
        """The images at ``indices`` (int (n,)), in that order, with the same classes and transform.

        A contiguous increasing run of indices gives a view of the arrays, not a copy.
        """
        idx = np.asarray(indices, dtype=np.int64)
        if idx.ndim != 1:
            raise ValueError(f"indices must be 1-D, got shape {idx.shape}")
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise ValueError(
                f"indices must lie in [0, {len(self)}), got [{idx.min()}, {idx.max()}]"
            )
        key = _as_view_index(idx)
        return ArrayDataset(self.images[key], self.labels[key], self.class_names, self.transform)

    def with_transform(self, transform: Transform | None) -> ArrayDataset:
        """The same arrays (shared, not copied) with another transform."""
        return ArrayDataset(self.images, self.labels, self.class_names, transform)

    def __repr__(self) -> str:
        return (
            f"ArrayDataset(n={len(self)}, image_shape={tuple(self.images.shape[1:])}, "
            f"num_classes={self.num_classes})"
        )


@dataclass
class PooledDataset:
    """A whole dataset as one pool, plus its official train/test split.

    data: every image of the dataset (official train images first, then test images).
    is_test: bool (N,), True for images of the official test split (all False when the dataset
        has no official split, e.g. an image folder).
    name: the dataset's registry name.
    """

    data: ArrayDataset
    is_test: np.ndarray
    name: str

    def __post_init__(self) -> None:
        self.is_test = np.asarray(self.is_test, dtype=bool)
        if self.is_test.shape != (len(self.data),):
            raise ValueError(
                f"is_test must have shape ({len(self.data)},), got {self.is_test.shape}"
            )
