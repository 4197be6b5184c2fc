import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from deephash.data.idx import find_idx_file, read_idx, read_mnist_like, read_mnist_like_labels


def write_idx(path: Path, arr: np.ndarray, code: int = 0x08, compress: bool = False) -> None:
    header = struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    big = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    data = header + arr.astype(big).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


def write_mnist(
    root: Path, n_train: int, n_test: int, compress: bool, seed: int = 0
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n).astype(np.uint8)
        suffix = ".gz" if compress else ""
        write_idx(root / f"{split}-images-idx3-ubyte{suffix}", x, compress=compress)
        write_idx(root / f"{split}-labels-idx1-ubyte{suffix}", y, compress=compress)
        out[f"{split}_x"], out[f"{split}_y"] = x, y
    return out


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_round_trip(tmp_path: Path, compress: bool) -> None:
    ref = write_mnist(tmp_path, 12, 5, compress)
    pooled = read_mnist_like(tmp_path, [str(i) for i in range(10)])
    np.testing.assert_array_equal(
        pooled.data.images, np.concatenate([ref["train_x"], ref["t10k_x"]])
    )
    np.testing.assert_array_equal(
        pooled.data.labels, np.concatenate([ref["train_y"], ref["t10k_y"]])
    )
    assert pooled.data.images.dtype == np.uint8 and pooled.data.labels.dtype == np.int64
    assert pooled.is_test.tolist() == [False] * 12 + [True] * 5
    labels, is_test = read_mnist_like_labels(tmp_path)
    np.testing.assert_array_equal(labels, pooled.data.labels)
    np.testing.assert_array_equal(is_test, pooled.is_test)


@pytest.mark.parametrize("code", [0x09, 0x0B, 0x0C, 0x0D, 0x0E])
def test_read_idx_dtypes(tmp_path: Path, code: int) -> None:
    arr = (np.arange(24).reshape(2, 3, 4) - 7).astype(np.float64)
    write_idx(tmp_path / "x", arr, code=code)
    got = read_idx(tmp_path / "x")
    np.testing.assert_array_equal(got, arr)
    assert got.dtype.byteorder in "=|" or got.dtype.isnative


def test_truncated_raw_file(tmp_path: Path) -> None:
    write_idx(tmp_path / "x", np.zeros((4, 28, 28), np.uint8))
    data = (tmp_path / "x").read_bytes()
    (tmp_path / "x").write_bytes(data[:-10])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "x")
    (tmp_path / "x").write_bytes(data + b"\0")
    with pytest.raises(ValueError, match="trailing"):
        read_idx(tmp_path / "x")


def test_truncated_gzip(tmp_path: Path) -> None:
    write_idx(tmp_path / "x.gz", np.ones((50, 28, 28), np.uint8), compress=True)
    data = (tmp_path / "x.gz").read_bytes()
    (tmp_path / "x.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated gzip"):
        read_idx(tmp_path / "x.gz")


def test_bad_magic_and_dtype(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"\x01\x02\x08\x01" + b"\0" * 8)
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "a")
    (tmp_path / "b").write_bytes(b"\0\0\x07\x01" + struct.pack(">I", 1) + b"\0")
    with pytest.raises(ValueError, match="dtype code 0x07"):
        read_idx(tmp_path / "b")
    (tmp_path / "c").write_bytes(b"\0\0\x08\x03" + struct.pack(">I", 1))
    with pytest.raises(ValueError, match="header"):
        read_idx(tmp_path / "c")


def test_mismatched_counts_and_missing(tmp_path: Path) -> None:
    write_mnist(tmp_path, 6, 3, compress=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match=r"3 images but .* 4 labels"):
        read_mnist_like(tmp_path)
    with pytest.raises(FileNotFoundError, match="nope"):
        find_idx_file(tmp_path, "nope")


def test_debian_fashion_mnist() -> None:
    root = Path("/usr/share/datasets/fashion-mnist")
    if not (root / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("dataset-fashion-mnist package not installed")
    pooled = read_mnist_like(root)
    assert pooled.data.images.shape == (70000, 28, 28)
    assert pooled.is_test.sum() == 10000
    # Fashion-MNIST is balanced: 6,000 train and 1,000 test images per class.
    assert np.bincount(pooled.data.labels[~pooled.is_test]).tolist() == [6000] * 10
    assert np.bincount(pooled.data.labels[pooled.is_test]).tolist() == [1000] * 10
