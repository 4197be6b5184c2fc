"""The dataset catalogue (src/deephash/data/datasets.py): names, facts, errors."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deephash.data.datasets import (
    DATASETS,
    DatasetInfo,
    dataset_info,
    list_datasets,
    load_dataset,
    load_dataset_labels,
)


def test_every_dataset_is_catalogued_under_its_own_name() -> None:
    assert list_datasets() == [
        "cifar10", "cifar100", "cub200", "dogs", "fashion-mnist", "folder", "kmnist", "mnist"
    ]  # fmt: skip
    for name in list_datasets():
        info = dataset_info(name)
        assert isinstance(info, DatasetInfo) and info.name == name and DATASETS.get(name) is info
    assert (dataset_info("mnist").in_channels, dataset_info("mnist").flip) == (1, False)
    assert dataset_info("cub200").native_size is None and dataset_info("cifar10").native_size == 32


def test_unknown_dataset_lists_the_known_ones() -> None:
    with pytest.raises(
        ValueError, match="unknown dataset 'svhn'; known datasets: cifar10, cifar100"
    ):
        dataset_info("svhn")


def test_folder_dataset_is_read_by_its_registered_readers(tmp_path: Path) -> None:
    """Two classes of 16x16 PNGs: the pool holds each image exactly (no resize at 16 px), labelled
    by its sorted folder name; the label reader agrees without decoding."""
    rng = np.random.default_rng(0)
    made: dict[str, list[np.ndarray]] = {"cat": [], "ant": []}
    for cls, images in made.items():
        (tmp_path / cls).mkdir()
        for i in range(2 if cls == "cat" else 3):
            arr = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(arr).save(tmp_path / cls / f"{i}.png")
            images.append(arr)
    pooled = load_dataset("folder", root=tmp_path, image_size=16, cache=False)
    labels = load_dataset_labels("folder", root=tmp_path)
    assert labels.class_names == ["ant", "cat"] == pooled.data.class_names
    assert labels.labels.tolist() == [0, 0, 0, 1, 1] == pooled.data.labels.tolist()
    assert not labels.is_test.any() and not pooled.is_test.any()
    np.testing.assert_array_equal(pooled.data.images, np.stack(made["ant"] + made["cat"]))
    with pytest.raises(ValueError, match="the 'folder' dataset needs its root folder"):
        load_dataset("folder")
