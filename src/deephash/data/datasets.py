"""The dataset registry: one name per dataset, its readers, channels and augmentation facts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deephash._registry import Catalog
from deephash.data.cifar import read_cifar10, read_cifar100
from deephash.data.cub import index_cub200, read_cub200
from deephash.data.dataset import PooledDataset
from deephash.data.dogs import index_stanford_dogs, read_stanford_dogs
from deephash.data.download import download_dataset
from deephash.data.idx import (
    FASHION_MNIST_CLASSES,
    KMNIST_CLASSES,
    MNIST_CLASSES,
    read_mnist_like,
    read_mnist_like_labels,
)
from deephash.data.image_folder import DEFAULT_IMAGE_SIZE, list_image_folder, read_image_folder
from deephash.data.locations import SOURCES, find_dataset, user_cache_dir
from deephash.data.transforms import resize_images

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "DatasetLabels",
    "dataset_info",
    "list_datasets",
    "load_dataset",
    "load_dataset_labels",
]


@dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a dataset.

    native_size: side of the stored square images (28, 32), or None for photos of varying size
        that are decoded to ``image_size``.
    flip: whether a horizontal flip keeps the label (not for digits or characters).
    """

    name: str
    in_channels: int
    native_size: int | None
    flip: bool
    description: str


@dataclass
class DatasetLabels:
    """Labels of a dataset's pool without its images: int64 (N,) labels, bool (N,) is_test."""

    labels: np.ndarray
    is_test: np.ndarray
    class_names: list[str]


Reader = Callable[..., PooledDataset]
"""Reads a dataset folder into its pool: ``read(folder)`` for stored sizes, ``read(folder,
image_size, resize_size=..., cache_dir=...)`` for photos."""
LabelReader = Callable[[Path], DatasetLabels]

DATASETS: Catalog[DatasetInfo] = Catalog("dataset")
"""Every dataset by name (:func:`list_datasets`, :func:`dataset_info`), with its readers
(metadata ``read`` and ``read_labels``; ``None``: the labels come with the images)."""


def _add(info: DatasetInfo, read: Reader, read_labels: LabelReader | None) -> None:
    DATASETS.add(info.name, info, read=read, read_labels=read_labels)


def _add_idx(name: str, classes: Sequence[str], description: str, flip: bool) -> None:
    def read(folder: Path) -> PooledDataset:
        return read_mnist_like(folder, list(classes), name)

    def read_labels(folder: Path) -> DatasetLabels:
        labels, is_test = read_mnist_like_labels(folder)
        return DatasetLabels(labels, is_test, list(classes))

    _add(DatasetInfo(name, 1, 28, flip, description), read, read_labels)


def _photo_labels(
    index: Callable[[Path], tuple[list[Path], np.ndarray, np.ndarray, list[str]]],
) -> LabelReader:
    def read_labels(folder: Path) -> DatasetLabels:
        _, labels, is_test, names = index(folder)
        return DatasetLabels(labels, is_test, names)

    return read_labels


def _folder_labels(folder: Path) -> DatasetLabels:
    _, labels, names = list_image_folder(folder)
    return DatasetLabels(labels, np.zeros(len(labels), bool), names)


_GREY = "60k train + 10k test, 28x28 grey"
_add_idx("mnist", MNIST_CLASSES, f"MNIST handwritten digits, {_GREY}", flip=False)
_add_idx("fashion-mnist", FASHION_MNIST_CLASSES, f"Fashion-MNIST (Zalando), {_GREY}", flip=True)
_add_idx("kmnist", KMNIST_CLASSES, f"Kuzushiji-MNIST, {_GREY}", flip=False)
_add(
    DatasetInfo("cifar10", 3, 32, True, "CIFAR-10, 50k train + 10k test, 32x32 colour"),
    read_cifar10,
    None,
)
_add(
    DatasetInfo("cifar100", 3, 32, True, "CIFAR-100 (fine labels), 50k + 10k, 32x32"),
    read_cifar100,
    None,
)
_add(
    DatasetInfo("cub200", 3, None, True, "CUB-200-2011 birds, 5,994 train + 5,794 test photos"),
    read_cub200,
    _photo_labels(index_cub200),
)
_add(
    DatasetInfo("dogs", 3, None, True, "Stanford Dogs, 12,000 train + 8,580 test photos"),
    read_stanford_dogs,
    _photo_labels(index_stanford_dogs),
)
_add(
    DatasetInfo("folder", 3, None, True, "any image folder root/<class>/*.jpg|jpeg|png"),
    read_image_folder,
    _folder_labels,
)


def list_datasets() -> list[str]:
    """Registered dataset names, sorted."""
    return DATASETS.names()


def dataset_info(name: str) -> DatasetInfo:
    """Facts about dataset ``name``; ValueError listing the known names otherwise."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(list_datasets())}")
    return DATASETS.get(name)


def _locate(
    name: str, data_dir: str | Path | None, download: bool, root: str | Path | None
) -> Path:
    dataset_info(name)
    if name == "folder":
        folder = root if root is not None else data_dir
        if folder is None:
            raise ValueError(
                "the 'folder' dataset needs its root folder: pass root=... or --data-dir"
            )
        return Path(folder).expanduser()
    if root is not None:
        return Path(root).expanduser()
    try:
        return find_dataset(name, data_dir)
    except FileNotFoundError:
        if not download or name not in SOURCES:
            raise
    return download_dataset(name, data_dir)


def load_dataset_labels(
    name: str,
    *,
    data_dir: str | Path | None = None,
    download: bool = False,
    root: str | Path | None = None,
) -> DatasetLabels:
    """Labels and official split of ``name``, reading as little as possible (no image decoding)."""
    folder = _locate(name, data_dir, download, root)
    read_labels: LabelReader | None = DATASETS.meta(name)["read_labels"]
    if read_labels is not None:
        return read_labels(folder)
    pooled = load_dataset(name, root=folder)  # CIFAR keeps labels inside the image batches
    return DatasetLabels(pooled.data.labels, pooled.is_test, pooled.data.class_names)


def load_dataset(
    name: str,
    *,
    data_dir: str | Path | None = None,
    download: bool = False,
    image_size: int | None = None,
    resize_size: int | None = None,
    root: str | Path | None = None,
    cache: bool = True,
) -> PooledDataset:
    """Read dataset ``name`` into one uint8 pool (official train images first, then test).

    data_dir: where to look first (see :mod:`deephash.data.locations` for the search order).
    download: fetch the official files when the dataset is not found.
    image_size: side of the square images returned. Photos (cub200, dogs, folder) are decoded to
        this size (default 224: short side resized, center crop); fixed-size datasets are resized
        from their native size only when it differs.
    resize_size: short side before the center crop for photos (default ``image_size``).
    root: the dataset folder itself, skipping the search (required for ``folder``).
    cache: keep decoded photos as ``.npy`` under the user cache, keyed by files and sizes.

    Images: uint8 (N, 28, 28) for the MNIST family, (N, S, S, 3) otherwise.
    """
    info = dataset_info(name)
    folder = _locate(name, data_dir, download, root)
    read: Reader = DATASETS.meta(name)["read"]
    if info.native_size is None:
        size = image_size or DEFAULT_IMAGE_SIZE
        cache_dir = user_cache_dir() / "decoded" if cache else None
        return read(folder, size, resize_size=resize_size, cache_dir=cache_dir)
    pooled = read(folder)
    if image_size is not None and image_size != info.native_size:
        pooled.data.images = resize_images(pooled.data.images, image_size)
    return pooled
