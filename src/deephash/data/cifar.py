"""Readers for the official python-pickle releases of CIFAR-10 and CIFAR-100.

Each batch is a pickled dict with ``b"data"``: uint8 (n, 3072) in channel-major order (1024 red,
then 1024 green, then 1024 blue values of a 32x32 image, row-major) and ``b"labels"`` (CIFAR-10) or
``b"fine_labels"`` (CIFAR-100). Pickle can run code: only read files from the official archives.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from deephash.data.dataset import ArrayDataset, PooledDataset

__all__ = [
    "CIFAR10_CLASSES",
    "CIFAR10_DIR",
    "CIFAR100_DIR",
    "read_cifar10",
    "read_cifar100",
    "read_cifar_batch",
]

CIFAR10_DIR = "cifar-10-batches-py"
CIFAR100_DIR = "cifar-100-python"
CIFAR10_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


def _unpickle(path: Path) -> dict[Any, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR file {path} does not exist")
    try:
        with path.open("rb") as f:
            obj = pickle.load(f, encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: corrupt or truncated CIFAR pickle ({exc})") from exc
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    return obj


def read_cifar_batch(
    path: str | Path, label_key: bytes = b"labels"
) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR batch file -> (uint8 (n, 32, 32, 3) images, int64 (n,) labels)."""
    path = Path(path)
    batch = _unpickle(path)
    for key in (b"data", label_key):
        if key not in batch:
            raise ValueError(f"{path}: missing key {key!r} (found {sorted(map(str, batch))})")
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: b'data' must be uint8 (n, 3072), got {data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],):
        raise ValueError(f"{path}: {data.shape[0]} images but labels have shape {labels.shape}")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _names(path: Path, key: bytes, fallback: list[str]) -> list[str]:
    if not path.is_file():
        return fallback
    meta = _unpickle(path)
    if key not in meta:
        return fallback
    return [n.decode() if isinstance(n, bytes) else str(n) for n in meta[key]]


def _pool(
    parts: list[tuple[np.ndarray, np.ndarray]], n_train_parts: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    n_train = sum(len(p[1]) for p in parts[:n_train_parts])
    is_test = np.arange(len(labels)) >= n_train
    return images, labels, is_test


def read_cifar10(root: str | Path) -> PooledDataset:
    """CIFAR-10 from ``root/cifar-10-batches-py`` (or ``root`` itself if it holds the batches).

    Returns a pool of uint8 (60000, 32, 32, 3): data_batch_1..5 first, then test_batch.
    """
    folder = _folder(Path(root), CIFAR10_DIR, "data_batch_1")
    parts = [read_cifar_batch(folder / f) for f in [*CIFAR10_TRAIN, "test_batch"]]
    images, labels, is_test = _pool(parts, len(CIFAR10_TRAIN))
    names = _names(folder / "batches.meta", b"label_names", CIFAR10_CLASSES)
    return PooledDataset(ArrayDataset(images, labels, names), is_test, "cifar10")


def read_cifar100(root: str | Path) -> PooledDataset:
    """CIFAR-100 (fine labels) from ``root/cifar-100-python`` (or ``root`` itself).

    Returns a pool of uint8 (60000, 32, 32, 3): ``train`` first, then ``test``.
    """
    folder = _folder(Path(root), CIFAR100_DIR, "train")
    parts = [read_cifar_batch(folder / f, b"fine_labels") for f in ("train", "test")]
    images, labels, is_test = _pool(parts, 1)
    fallback = [str(c) for c in range(100)]
    names = _names(folder / "meta", b"fine_label_names", fallback)
    return PooledDataset(ArrayDataset(images, labels, names), is_test, "cifar100")


def _folder(root: Path, dirname: str, probe: str) -> Path:
    if (root / dirname / probe).is_file():
        return root / dirname
    if (root / probe).is_file():
        return root
    raise FileNotFoundError(f"no {dirname}/{probe} under {root}")
