"""Image folders (``root/<class name>/*.jpg|jpeg|png``) and the shared JPEG/PNG decoder.

Variable-size photos are decoded once with PIL, resized so the short side is ``resize_size``
(default ``image_size``), center-cropped to ``image_size`` x ``image_size`` and kept as one uint8
(N, S, S, 3) array, optionally cached on disk as ``.npy`` so later runs skip decoding.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from deephash.data.dataset import ArrayDataset, PooledDataset

__all__ = [
    "DEFAULT_IMAGE_SIZE",
    "IMAGE_EXTENSIONS",
    "decode_image",
    "decode_images",
    "list_image_folder",
    "read_image_folder",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
DEFAULT_IMAGE_SIZE = 224


def decode_image(path: str | Path, image_size: int, resize_size: int | None = None) -> np.ndarray:
    """One image file -> uint8 (image_size, image_size, 3) RGB.

    The short side is resized to ``resize_size`` (default ``image_size``, bilinear with
    antialiasing), then the center ``image_size`` square is cropped.
    """
    resize = image_size if resize_size is None else resize_size
    if image_size < 1 or resize < image_size:
        raise ValueError(
            f"need 1 <= image_size <= resize_size, got image_size={image_size}, resize_size={resize}"
        )
    try:
        with Image.open(path) as img:
            # JPEG: let libjpeg decode at a reduced scale that is still >= the target size.
            img.draft("RGB", (resize, resize))
            rgb = img.convert("RGB")
    except (OSError, SyntaxError) as exc:  # PIL raises these for unreadable / truncated files
        raise ValueError(f"cannot decode image {path}: {exc}") from exc
    w, h = rgb.size
    scale = resize / min(w, h)
    new_w, new_h = max(resize, round(w * scale)), max(resize, round(h * scale))
    rgb = rgb.resize((new_w, new_h), Image.Resampling.BILINEAR)
    left, top = (new_w - image_size) // 2, (new_h - image_size) // 2
    rgb = rgb.crop((left, top, left + image_size, top + image_size))
    return np.asarray(rgb, dtype=np.uint8)


def _cache_key(paths: Sequence[Path], image_size: int, resize_size: int | None) -> str:
    h = hashlib.sha1(f"v1 {image_size} {resize_size}".encode())
    for p in paths:
        st = p.stat()
        h.update(f"\n{p.resolve()} {st.st_size} {st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def decode_images(
    paths: Sequence[str | Path],
    image_size: int = DEFAULT_IMAGE_SIZE,
    *,
    resize_size: int | None = None,
    cache_dir: str | Path | None = None,
    desc: str = "decoding images",
    num_threads: int | None = None,
) -> np.ndarray:
    """Decode many files (see :func:`decode_image`) -> uint8 (N, image_size, image_size, 3).

    With ``cache_dir``, the array is stored there as ``.npy`` keyed by the files' paths, sizes and
    modification times and the sizes asked for; a matching cache file is loaded instead of decoding.
    A tqdm bar shows progress while decoding (hidden when stderr is not a terminal).
    """
    files = [Path(p) for p in paths]
    cache_file = None
    if cache_dir is not None:
        key = _cache_key(files, image_size, resize_size)
        cache_file = Path(cache_dir) / f"{desc.replace(' ', '_')}-{image_size}px-{key}.npy"
        if cache_file.is_file():
            cached = np.load(cache_file)
            if cached.shape == (len(files), image_size, image_size, 3) and cached.dtype == np.uint8:
                return cached
    out = np.empty((len(files), image_size, image_size, 3), dtype=np.uint8)
    threads = num_threads or min(8, os.cpu_count() or 1)

    def work(i: int) -> None:
        out[i] = decode_image(files[i], image_size, resize_size)

    with ThreadPoolExecutor(max_workers=threads) as pool:  # PIL releases the GIL while decoding
        for _ in tqdm(
            pool.map(work, range(len(files))), total=len(files), desc=desc, unit="img", disable=None
        ):
            pass
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_name(cache_file.name + f".tmp{os.getpid()}")
        with tmp.open("wb") as f:
            np.save(f, out)
        os.replace(tmp, cache_file)
    return out


def list_image_folder(root: str | Path) -> tuple[list[Path], np.ndarray, list[str]]:
    """Files of ``root/<class>/*.{jpg,jpeg,png}`` (case-insensitive extensions).

    Classes are the sub-folder names that hold at least one image, sorted; files are sorted within
    a class. Returns (paths, int64 (N,) labels, class names).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    paths: list[Path] = []
    labels: list[int] = []
    names: list[str] = []
    for sub in sorted(d for d in root.iterdir() if d.is_dir()):
        files = sorted(
            f for f in sub.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS and f.is_file()
        )
        if not files:
            continue
        names.append(sub.name)
        paths.extend(files)
        labels.extend([len(names) - 1] * len(files))
    if not names:
        raise ValueError(
            f"{root} holds no class folders with images; expected root/<class name>/*.jpg|jpeg|png"
        )
    return paths, np.asarray(labels, dtype=np.int64), names


def read_image_folder(
    root: str | Path,
    image_size: int = DEFAULT_IMAGE_SIZE,
    *,
    resize_size: int | None = None,
    cache_dir: str | Path | None = None,
) -> PooledDataset:
    """An image folder as a pool of uint8 (N, image_size, image_size, 3); no official test split."""
    paths, labels, names = list_image_folder(root)
    images = decode_images(
        paths, image_size, resize_size=resize_size, cache_dir=cache_dir, desc=f"{Path(root).name}"
    )
    return PooledDataset(ArrayDataset(images, labels, names), np.zeros(len(labels), bool), "folder")
