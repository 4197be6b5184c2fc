"""One call from a protocol name (or file) to ready-to-use splits, for the trainer and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deephash.data.dataset import ArrayDataset
from deephash.data.datasets import PooledDataset, dataset_info, load_dataset
from deephash.data.protocol import Protocol
from deephash.data.protocol_builder import create_protocol
from deephash.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    BatchTransform,
    Compose,
    build_transform,
    channel_stats,
)

__all__ = ["ProtocolData", "load_protocol_data"]


@dataclass
class ProtocolData:
    """A dataset pool cut by a protocol.

    pool: every image (uint8) of the dataset; ``pool.images[protocol.train]`` etc. index it
        without copies of the splits.
    mean, std: per-channel normalization in [0, 1] pixel units: computed exactly from the train
        split for fixed-size datasets, ImageNet's for photos (pretrained backbones expect them).
    flip: whether horizontal-flip augmentation keeps labels for this dataset.
    augment: whether the ``train`` split's per-item transform augments.
    padding: random-crop padding in pixels per side when augmenting; None picks the dataset's
        default (image side / 8, e.g. 4 px for 32 px images), 0 turns cropping off (flips only).
    train_includes_validation: the ``train`` split also holds the validation images (a final fit
        after model selection).
    crop_scale, jitter: the stronger batched augmentation of
        :func:`~deephash.data.transforms.resized_crop_jitter` on top of crop and flip (random
        resized crops down to ``crop_scale`` of the area; contrast / brightness jitter); None and 0
        turn it off. Only the batched path (:meth:`batch_transform`, :meth:`preprocessor`) applies it.

    The splits ``train``, ``validation``, ``query``, ``database`` and ``val_database`` are
    :class:`ArrayDataset` s built on first use (contiguous splits are views of the pool).
    """

    protocol: Protocol
    pool: ArrayDataset
    mean: tuple[float, ...]
    std: tuple[float, ...]
    flip: bool
    augment: bool = True
    padding: int | None = None
    train_includes_validation: bool = False
    crop_scale: float | None = None
    jitter: float = 0.0

    def _split(self, indices: np.ndarray, train: bool) -> ArrayDataset:
        return self.pool.subset(indices).with_transform(self.transform(train))

    @cached_property
    def train(self) -> ArrayDataset:
        if self.train_includes_validation:
            both = np.concatenate([self.protocol.train, self.protocol.validation])
            return self._split(both, True)
        return self._split(self.protocol.train, True)

    @cached_property
    def validation(self) -> ArrayDataset:
        return self._split(self.protocol.validation, False)

    @cached_property
    def query(self) -> ArrayDataset:
        return self._split(self.protocol.query, False)

    @cached_property
    def database(self) -> ArrayDataset:
        return self._split(self.protocol.database, False)

    @cached_property
    def val_database(self) -> ArrayDataset:
        """The train split without augmentation: what validation queries retrieve against."""
        return self._split(self.protocol.val_database, False)

    @property
    def protocol_name(self) -> str:
        return self.protocol.name

    @property
    def num_classes(self) -> int:
        return self.pool.num_classes

    @property
    def in_channels(self) -> int:
        return self.pool.in_channels

    @property
    def image_size(self) -> int:
        return self.pool.image_shape[0]

    def transform(self, train: bool) -> Compose:
        """Per-item transform (uint8 -> normalized float (C, H, W)); augments for train if enabled."""
        return build_transform(
            train, self.mean, self.std, augment=self.augment, flip=self.flip, padding=self._padding
        )

    def batch_transform(self, train: bool) -> BatchTransform:
        """Batched uint8 (B, H, W[, C]) -> normalized float (B, C, H, W); augments for train."""
        return BatchTransform(
            self.mean,
            self.std,
            augment=train and self.augment,
            flip=self.flip,
            padding=self._padding,
            crop_scale=self.crop_scale,
            jitter=self.jitter,
        )

    def preprocessor(self, *, augment: bool) -> Callable[..., torch.Tensor]:
        """uint8 numpy batch (B, H, W[, C]) -> normalised float tensor (B, C, H, W), optionally
        augmented with the dataset's own settings (no flips for digits, padding suited to the
        image size). Call as ``pre(images)`` or ``pre(images, generator=torch_generator)``."""
        transform = self.batch_transform(train=augment)

        def run(images: np.ndarray, generator: torch.Generator | None = None) -> torch.Tensor:
            out: torch.Tensor = transform(
                torch.from_numpy(np.ascontiguousarray(images)), generator=generator
            )
            return out

        return run

    @property
    def _padding(self) -> int:
        if self.padding is not None:
            return self.padding
        # 4 px for 32 px CIFAR images (the usual recipe); scaled with the image side otherwise.
        return max(1, round(self.image_size / 8))


def load_protocol_data(
    name_or_path: str | Path,
    *,
    data_dir: str | Path | None = None,
    download: bool = False,
    seed: int = 0,
    image_size: int | None = None,
    resize_size: int | None = None,
    augment: bool = True,
    padding: int | None = None,
    train_includes_validation: bool = False,
    crop_scale: float | None = None,
    jitter: float = 0.0,
    normalization: tuple[float, float] | None = None,
    **options: Any,
) -> ProtocolData:
    """Load a dataset and cut it by a protocol.

    name_or_path: a protocol name (see :func:`list_protocols`) or a saved protocol ``.json`` file
        (its seed and options are fixed; passing ``options`` then is an error).
    data_dir, download: where to look for the dataset first, and whether to fetch it if missing.
    image_size, resize_size: see :func:`deephash.data.datasets.load_dataset`.
    augment, padding, train_includes_validation, crop_scale, jitter: see :class:`ProtocolData`.
    normalization: ``(mean, std)`` in [0, 1] pixel units for every channel, instead of the
        dataset's own statistics (a pretrained backbone's, see
        :func:`deephash.models.backbone_input_stats`); ``None``: the dataset's.
    options: protocol options (e.g. ``root=`` for ``folder``, ``class_disjoint=True``).
    """
    reading = {
        "data_dir": data_dir,
        "download": download,
        "image_size": image_size,
        "resize_size": resize_size,
    }
    protocol, pooled = _cut(name_or_path, seed, reading, options)
    mean, std = _normalization(protocol, pooled, normalization)
    return ProtocolData(
        protocol,
        pooled.data,
        mean,
        std,
        dataset_info(protocol.dataset).flip,
        augment,
        padding=padding,
        train_includes_validation=train_includes_validation,
        crop_scale=crop_scale,
        jitter=jitter,
    )


def _cut(
    name_or_path: str | Path, seed: int, reading: dict[str, Any], options: dict[str, Any]
) -> tuple[Protocol, PooledDataset]:
    """The protocol (saved in a ``.json`` file, or created from its name with ``seed`` and
    ``options``) and the pooled dataset it cuts; ``reading``: load_dataset's keyword arguments."""
    from deephash.data.protocol_catalogue import list_protocols, protocol_spec

    path = Path(name_or_path)
    is_name = str(name_or_path) in list_protocols()
    if str(name_or_path).endswith(".json") or (not is_name and path.is_file()):
        if options:
            raise ValueError(f"options {sorted(options)} cannot change a saved protocol ({path})")
        protocol = Protocol.load(path)
        pooled = load_dataset(protocol.dataset, root=protocol.options.get("root"), **reading)
        protocol.check_labels(pooled.data.labels)
        return protocol, pooled
    spec = protocol_spec(str(name_or_path))
    root = options.get("root")
    if spec.dataset == "folder" and root is None:
        root = reading["data_dir"]
        options = {**options, "root": root}
    pooled = load_dataset(spec.dataset, root=root, **reading)
    protocol = create_protocol(
        spec.name, seed, labels=pooled.data.labels, is_test=pooled.is_test, **options
    )
    return protocol, pooled


def _normalization(
    protocol: Protocol, pooled: PooledDataset, normalization: tuple[float, float] | None
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (mean, std): the given pair, else the training images' own statistics for a
    dataset of native size, else ImageNet's."""
    if normalization is not None:
        channels = pooled.data.in_channels
        return (normalization[0],) * channels, (normalization[1],) * channels
    if dataset_info(protocol.dataset).native_size is not None:
        return channel_stats(pooled.data.images[protocol.train])
    return IMAGENET_MEAN, IMAGENET_STD
