import pickle
from pathlib import Path

import numpy as np
import pytest

from deephash.data.cifar import read_cifar10, read_cifar100, read_cifar_batch


def write_batch(
    path: Path, images_hwc: np.ndarray, labels: list[int], key: bytes = b"labels"
) -> None:
    data = images_hwc.transpose(0, 3, 1, 2).reshape(len(images_hwc), -1)  # channel-major rows
    with path.open("wb") as f:
        pickle.dump({b"data": data, key: labels, b"batch_label": b"x"}, f)


def test_channel_major_layout(tmp_path: Path) -> None:
    # Hand-built row: red plane all 1, green 2, blue 3, except pixel (0, 1) red = 200.
    row = np.concatenate([np.full(1024, 1), np.full(1024, 2), np.full(1024, 3)]).astype(np.uint8)
    row[1] = 200
    with (tmp_path / "b").open("wb") as f:
        pickle.dump({b"data": row[None], b"labels": [7]}, f)
    images, labels = read_cifar_batch(tmp_path / "b")
    assert images.shape == (1, 32, 32, 3) and labels.tolist() == [7]
    assert images[0, 0, 1].tolist() == [200, 2, 3] and images[0, 5, 5].tolist() == [1, 2, 3]


def test_cifar10_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    xs, ys = [], []
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        x = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
        y = rng.integers(0, 10, 3).tolist()
        write_batch(folder / name, x, y)
        xs.append(x)
        ys.extend(y)
    with (folder / "batches.meta").open("wb") as f:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, f)
    pooled = read_cifar10(tmp_path)
    np.testing.assert_array_equal(pooled.data.images, np.concatenate(xs))
    assert pooled.data.labels.tolist() == ys
    assert pooled.is_test.sum() == 3 and pooled.is_test[-3:].all()
    assert pooled.data.class_names[3] == "c3"
    assert read_cifar10(folder).data.images.shape == (18, 32, 32, 3)  # the batches folder itself


def test_cifar100_fine_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    x_tr, x_te = (
        rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8),
        rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8),
    )
    write_batch(folder / "train", x_tr, [99, 0, 5, 5], key=b"fine_labels")
    write_batch(folder / "test", x_te, [1, 2], key=b"fine_labels")
    pooled = read_cifar100(tmp_path)
    np.testing.assert_array_equal(pooled.data.images, np.concatenate([x_tr, x_te]))
    assert pooled.data.labels.tolist() == [99, 0, 5, 5, 1, 2]
    assert pooled.data.num_classes == 100


def test_corrupt_batches(tmp_path: Path) -> None:
    write_batch(tmp_path / "ok", np.zeros((2, 32, 32, 3), np.uint8), [0, 1])
    data = (tmp_path / "ok").read_bytes()
    (tmp_path / "trunc").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        read_cifar_batch(tmp_path / "trunc")
    with (tmp_path / "nokey").open("wb") as f:
        pickle.dump({b"data": np.zeros((1, 3072), np.uint8)}, f)
    with pytest.raises(ValueError, match="missing key"):
        read_cifar_batch(tmp_path / "nokey")
    with (tmp_path / "shape").open("wb") as f:
        pickle.dump({b"data": np.zeros((1, 3000), np.uint8), b"labels": [0]}, f)
    with pytest.raises(ValueError, match="3072"):
        read_cifar_batch(tmp_path / "shape")
