import numpy as np
import pytest
import torch

from deephash.data.dataset import ArrayDataset, PooledDataset


def test_getitem_and_properties() -> None:
    images = np.arange(2 * 2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 2, 3)
    ds = ArrayDataset(images, np.array([1, 0]), ["a", "b"])
    x, y = ds[0]
    assert x.dtype == torch.float32 and x.shape == (3, 2, 2) and y == 1
    assert torch.allclose(x, torch.from_numpy(images[0]).permute(2, 0, 1).float() / 255)
    assert ds.num_classes == 2 and ds.in_channels == 3 and ds.image_shape == (2, 2) and len(ds) == 2
    grey = ArrayDataset(np.zeros((3, 4, 4), np.uint8), np.zeros(3, np.int64), ["z"])
    assert grey[2][0].shape == (1, 4, 4) and grey.in_channels == 1


def test_subset_views_and_copies() -> None:
    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1)
    ds = ArrayDataset(images, np.arange(10) % 3, ["a", "b", "c"])
    view = ds.subset(np.arange(3, 7))
    assert np.shares_memory(view.images, images) and view.images[:, 0, 0].tolist() == [3, 4, 5, 6]
    picked = ds.subset([9, 1, 4])
    assert picked.images[:, 0, 0].tolist() == [9, 1, 4] and picked.labels.tolist() == [0, 1, 1]
    with pytest.raises(ValueError, match="indices must lie"):
        ds.subset([10])


def test_validation_errors() -> None:
    with pytest.raises(ValueError, match="uint8"):
        ArrayDataset(np.zeros((2, 3, 3)), np.zeros(2, int), ["a"])
    with pytest.raises(ValueError, match="shape \\(2,\\)"):
        ArrayDataset(np.zeros((2, 3, 3), np.uint8), np.zeros(3, int), ["a"])
    with pytest.raises(ValueError, match="labels must lie"):
        ArrayDataset(np.zeros((2, 3, 3), np.uint8), np.array([0, 1]), ["a"])
    with pytest.raises(ValueError, match="is_test"):
        PooledDataset(
            ArrayDataset(np.zeros((2, 3, 3), np.uint8), np.zeros(2, int), ["a"]),
            np.zeros(3, bool),
            "x",
        )
