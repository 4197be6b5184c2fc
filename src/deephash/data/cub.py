"""Reader for CUB-200-2011 (Wah et al., 2011): 11,788 bird photos of 200 species.

Layout of the official archive (``CUB_200_2011.tgz``)::

    CUB_200_2011/images.txt             "<image id> <class folder>/<file>.jpg"
    CUB_200_2011/image_class_labels.txt "<image id> <class id, 1-based>"
    CUB_200_2011/train_test_split.txt   "<image id> <1 = train, 0 = test>"
    CUB_200_2011/classes.txt            "<class id> <class folder>"   (optional here)
    CUB_200_2011/images/<class folder>/<file>.jpg
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deephash.data.dataset import ArrayDataset, PooledDataset
from deephash.data.image_folder import DEFAULT_IMAGE_SIZE, decode_images

__all__ = ["CUB_DIR", "index_cub200", "read_cub200"]

CUB_DIR = "CUB_200_2011"


def _cub_root(root: Path) -> Path:
    for cand in (root / CUB_DIR, root):
        if (cand / "images.txt").is_file():
            return cand
    raise FileNotFoundError(f"no {CUB_DIR}/images.txt under {root}")


def _read_pairs(path: Path) -> dict[int, str]:
    if not path.is_file():
        raise FileNotFoundError(f"CUB list file {path} does not exist")
    out: dict[int, str] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or not parts[0].isdigit():
            raise ValueError(f"{path}:{lineno}: expected '<id> <value>', got {line!r}")
        key = int(parts[0])
        if key in out:
            raise ValueError(f"{path}:{lineno}: duplicate id {key}")
        out[key] = parts[1].strip()
    return out


def index_cub200(root: str | Path) -> tuple[list[Path], np.ndarray, np.ndarray, list[str]]:
    """The CUB list files -> (image paths, int64 (N,) labels 0-based, bool (N,) is_test, class names).

    Official training images come first (in image-id order), then the test images.
    """
    base = _cub_root(Path(root))
    images = _read_pairs(base / "images.txt")
    classes = _read_pairs(base / "image_class_labels.txt")
    split = _read_pairs(base / "train_test_split.txt")
    ids = sorted(images)
    for name, table in (("image_class_labels.txt", classes), ("train_test_split.txt", split)):
        if sorted(table) != ids:
            raise ValueError(f"{base / name} does not list the same image ids as images.txt")
    try:
        label_of = {i: int(classes[i]) - 1 for i in ids}
    except ValueError as exc:
        raise ValueError(
            f"{base / 'image_class_labels.txt'}: non-integer class id ({exc})"
        ) from exc
    if set(split.values()) - {"0", "1"}:
        raise ValueError(f"{base / 'train_test_split.txt'}: values must be 0 (test) or 1 (train)")
    num_classes = max(label_of.values()) + 1
    if min(label_of.values()) < 0:
        raise ValueError(f"{base / 'image_class_labels.txt'}: class ids must start at 1")
    names_file = base / "classes.txt"
    if names_file.is_file():
        table = _read_pairs(names_file)
        names = [table.get(c + 1, str(c + 1)) for c in range(num_classes)]
    else:  # the class folder name, e.g. "001.Black_footed_Albatross"
        names = [str(c + 1) for c in range(num_classes)]
        for i in ids:
            names[label_of[i]] = Path(images[i]).parent.name
    order = [i for i in ids if split[i] == "1"] + [i for i in ids if split[i] == "0"]
    paths = [base / "images" / images[i] for i in order]
    labels = np.asarray([label_of[i] for i in order], dtype=np.int64)
    is_test = np.asarray([split[i] == "0" for i in order], dtype=bool)
    return paths, labels, is_test, names


def read_cub200(
    root: str | Path,
    image_size: int = DEFAULT_IMAGE_SIZE,
    *,
    resize_size: int | None = None,
    cache_dir: str | Path | None = None,
) -> PooledDataset:
    """CUB-200-2011 as a pool of uint8 (11788, image_size, image_size, 3), train images first."""
    paths, labels, is_test, names = index_cub200(root)
    images = decode_images(
        paths, image_size, resize_size=resize_size, cache_dir=cache_dir, desc="cub200"
    )
    return PooledDataset(ArrayDataset(images, labels, names), is_test, "cub200")
