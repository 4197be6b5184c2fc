"""Reader for the IDX format of MNIST, Fashion-MNIST and KMNIST (gzip-compressed or raw).

IDX layout (LeCun et al., http://yann.lecun.com/exdb/mnist/): two zero bytes, one dtype-code byte,
one byte with the number of dimensions ``d``, then ``d`` big-endian uint32 sizes, then the values in
C order, big-endian.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from deephash.data.dataset import ArrayDataset, PooledDataset

__all__ = [
    "FASHION_MNIST_CLASSES",
    "KMNIST_CLASSES",
    "MNIST_CLASSES",
    "MNIST_FILES",
    "find_idx_file",
    "read_idx",
    "read_mnist_like",
    "read_mnist_like_labels",
]

# IDX dtype code -> big-endian numpy dtype
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

# split -> (images stem, labels stem); each may sit on disk with or without ".gz"
MNIST_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
KMNIST_CLASSES = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":  # not gzip: a raw IDX file
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise ValueError(
            f"{path}: corrupt or truncated gzip file ({exc}); delete it and download it again"
        ) from exc


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (``.gz`` or raw; detected from the content, not the name).

    Returns an array of the file's shape in native byte order: uint8 (N, 28, 28) for MNIST images,
    uint8 (N,) for labels. Raises ValueError naming the file when the magic number, dtype code,
    dimensions or length are wrong.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(
            f"{path}: not an IDX file (bad magic number {data[:4].hex() or 'empty'}; "
            "expected 0000 followed by a dtype code and a dimension count)"
        )
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        raise ValueError(
            f"{path}: unknown IDX dtype code 0x{code:02x} "
            f"(valid: {', '.join(f'0x{c:02x}' for c in _IDX_DTYPES)})"
        )
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares zero dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} bytes, need {header})")
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "has trailing bytes"
        raise ValueError(
            f"{path}: IDX file {kind}: header declares shape {shape} of {dtype.name} "
            f"({expected} bytes in all) but the file holds {len(data)} bytes"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def find_idx_file(root: str | Path, stem: str) -> Path:
    """``root/stem.gz`` if present, else ``root/stem``; FileNotFoundError naming both if neither."""
    root = Path(root)
    for candidate in (root / f"{stem}.gz", root / stem):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"neither {root / stem}.gz nor {root / stem} exists")


def _read_split(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    img_stem, lab_stem = MNIST_FILES[split]
    img_path, lab_path = find_idx_file(root, img_stem), find_idx_file(root, lab_stem)
    images, labels = read_idx(img_path), read_idx(lab_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"{img_path}: expected uint8 images (N, H, W), got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ValueError(
            f"{lab_path}: expected uint8 labels (N,), got {labels.dtype} {labels.shape}"
        )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{img_path} holds {images.shape[0]} images but {lab_path} holds {labels.shape[0]} labels"
        )
    return images, labels.astype(np.int64)


def read_mnist_like_labels(root: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Labels only, pooled like :func:`read_mnist_like`: (int64 (N,) labels, bool (N,) is_test)."""
    root = Path(root)
    parts = [read_idx(find_idx_file(root, MNIST_FILES[s][1])).astype(np.int64) for s in MNIST_FILES]
    is_test = np.concatenate([np.zeros(len(parts[0]), bool), np.ones(len(parts[1]), bool)])
    return np.concatenate(parts), is_test


def read_mnist_like(
    root: str | Path, class_names: list[str] | None = None, name: str = "mnist"
) -> PooledDataset:
    """Read the four IDX files of MNIST / Fashion-MNIST / KMNIST in ``root``.

    Returns a pool of uint8 (70000, 28, 28) images: the 60,000 official training images first,
    then the 10,000 test images (``is_test``).
    """
    root = Path(root)
    tr_x, tr_y = _read_split(root, "train")
    te_x, te_y = _read_split(root, "test")
    if tr_x.shape[1:] != te_x.shape[1:]:
        raise ValueError(
            f"{root}: train images {tr_x.shape[1:]} and test images {te_x.shape[1:]} differ"
        )
    labels = np.concatenate([tr_y, te_y])
    names = class_names or [str(c) for c in range(int(labels.max()) + 1)]
    data = ArrayDataset(np.concatenate([tr_x, te_x]), labels, names)
    is_test = np.concatenate([np.zeros(len(tr_y), bool), np.ones(len(te_y), bool)])
    return PooledDataset(data, is_test, name)
