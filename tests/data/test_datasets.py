"""The dataset catalogue (src/deephash/data/datasets.py): names, facts, errors."""

import pytest

from deephash.data.datasets import DATASETS, DatasetInfo, dataset_info, list_datasets


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
