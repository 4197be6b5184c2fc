"""Reader for Stanford Dogs (Khosla et al., 2011): 20,580 photos of 120 breeds.

Layout of the official ``images.tar`` + ``lists.tar``::

    train_list.mat, test_list.mat   MATLAB files with ``file_list`` (cell of
                                    "<wnid>-<breed>/<file>.jpg") and ``labels`` (1-based)
    Images/<wnid>-<breed>/<file>.jpg

Plain-text lists are accepted too, when the ``.mat`` files are absent: ``train_list.txt`` and
``test_list.txt`` with one "<wnid>-<breed>/<file>.jpg [label]" per line; without a label column,
the class is the folder's rank among the sorted breed folders listed in either file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deephash.data.dataset import ArrayDataset, PooledDataset
from deephash.data.image_folder import DEFAULT_IMAGE_SIZE, decode_images

__all__ = ["index_stanford_dogs", "read_stanford_dogs"]


def _read_mat_list(path: Path) -> tuple[list[str], list[int] | None]:
    from scipy.io import loadmat

    try:
        mat = loadmat(path)
    except Exception as exc:  # scipy raises several types for corrupt files
        raise ValueError(f"{path}: cannot read MATLAB list file ({exc})") from exc
    if "file_list" not in mat or "labels" not in mat:
        raise ValueError(f"{path}: expected variables 'file_list' and 'labels'")
    files = [str(np.ravel(entry)[0]) for entry in np.ravel(mat["file_list"])]
    labels = [int(v) for v in np.ravel(mat["labels"])]
    if len(files) != len(labels):
        raise ValueError(f"{path}: {len(files)} files but {len(labels)} labels")
    return files, labels


def _read_text_list(path: Path) -> tuple[list[str], list[int] | None]:
    files: list[str] = []
    labels: list[int] = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) > 2 or (len(parts) == 2 and not parts[1].lstrip("-").isdigit()):
            raise ValueError(
                f"{path}:{lineno}: expected '<breed folder>/<file> [label]', got {line!r}"
            )
        files.append(parts[0])
        if len(parts) == 2:
            labels.append(int(parts[1]))
    if labels and len(labels) != len(files):
        raise ValueError(f"{path}: either every line or no line must carry a label")
    return files, labels or None


def _read_list(root: Path, split: str) -> tuple[list[str], list[int] | None]:
    for cand in (root / f"{split}_list.mat", root / "lists" / f"{split}_list.mat"):
        if cand.is_file():
            return _read_mat_list(cand)
    for cand in (root / f"{split}_list.txt", root / "lists" / f"{split}_list.txt"):
        if cand.is_file():
            return _read_text_list(cand)
    raise FileNotFoundError(f"no {split}_list.mat or {split}_list.txt in {root}")


def index_stanford_dogs(root: str | Path) -> tuple[list[Path], np.ndarray, np.ndarray, list[str]]:
    """The list files -> (image paths, int64 (N,) labels 0-based, bool (N,) is_test, breed names).

    Official training images first, then test images, each in list order. Class names are the
    breed folder names (``n02085620-Chihuahua``).
    """
    root = Path(root)
    train, test = _read_list(root, "train"), _read_list(root, "test")
    files = train[0] + test[0]
    folders = [f.replace("\\", "/").split("/")[0] for f in files]
    if train[1] is None or test[1] is None:
        if (train[1] is None) != (test[1] is None):
            raise ValueError(f"{root}: train and test lists must both carry labels or both not")
        names = sorted(set(folders))
        labels = np.asarray([names.index(d) for d in folders], dtype=np.int64)
    else:
        labels = np.asarray(train[1] + test[1], dtype=np.int64) - 1
        if labels.min() < 0:
            raise ValueError(f"{root}: labels in the list files must be 1-based")
        names = [""] * (int(labels.max()) + 1)
        for lab, folder in zip(labels.tolist(), folders):
            if names[lab] and names[lab] != folder:
                raise ValueError(
                    f"{root}: label {lab + 1} is given to two breed folders, {names[lab]!r} and {folder!r}"
                )
            names[lab] = folder
        names = [n or f"class_{c + 1}" for c, n in enumerate(names)]
    paths = [root / "Images" / f for f in files]
    is_test = np.arange(len(files)) >= len(train[0])
    return paths, labels, is_test, names


def read_stanford_dogs(
    root: str | Path,
    image_size: int = DEFAULT_IMAGE_SIZE,
    *,
    resize_size: int | None = None,
    cache_dir: str | Path | None = None,
) -> PooledDataset:
    """Stanford Dogs as a pool of uint8 (20580, image_size, image_size, 3), train images first."""
    paths, labels, is_test, names = index_stanford_dogs(root)
    missing = [p for p in paths[:1] + paths[-1:] if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"image {missing[0]} listed in the split files does not exist")
    images = decode_images(
        paths, image_size, resize_size=resize_size, cache_dir=cache_dir, desc="dogs"
    )
    return PooledDataset(ArrayDataset(images, labels, names), is_test, "dogs")
