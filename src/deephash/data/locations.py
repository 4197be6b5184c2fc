"""Where dataset files live, where they come from, and how to tell the user when they are missing.

Search order for a dataset ``name``: the explicit ``data_dir`` (``--data-dir``), then
``$DEEPHASH_DATA``, then the user cache (``$XDG_CACHE_HOME/deephash`` or ``~/.cache/deephash``), then
well-known system folders (``/usr/share/datasets/<name>``, the Debian ``dataset-*`` packages).
Within ``data_dir`` and ``$DEEPHASH_DATA`` both ``<dir>/<name>`` and ``<dir>`` itself are tried.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "SOURCES",
    "DatasetNotFoundError",
    "DatasetSource",
    "RemoteFile",
    "download_dir",
    "find_dataset",
    "missing_files",
    "search_paths",
    "user_cache_dir",
]


@dataclass(frozen=True)
class RemoteFile:
    """One official file: its name on disk, mirror URLs tried in order, and its published MD5."""

    filename: str
    urls: tuple[str, ...]
    md5: str
    extract: bool = False


@dataclass(frozen=True)
class DatasetSource:
    """Files that make up a dataset on disk and where to fetch them.

    required: groups of relative paths; a folder holds the dataset when, for every group, at least
        one path of the group exists (e.g. ``x.gz`` or ``x``).
    """

    name: str
    required: tuple[tuple[str, ...], ...]
    files: tuple[RemoteFile, ...]
    dirnames: tuple[str, ...]
    system_paths: tuple[str, ...] = ()
    homepage: str = ""
    install_hint: str = ""
    extra: dict[str, str] = field(default_factory=dict)


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are in none of the searched folders."""


def _idx_source(
    name: str,
    dirnames: tuple[str, ...],
    mirrors: tuple[str, ...],
    md5s: dict[str, str],
    homepage: str,
    hint: str = "",
) -> DatasetSource:
    stems = (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    )
    return DatasetSource(
        name=name,
        required=tuple((f"{s}.gz", s) for s in stems),
        files=tuple(
            RemoteFile(f"{s}.gz", tuple(m + f"{s}.gz" for m in mirrors), md5s[s]) for s in stems
        ),
        dirnames=dirnames,
        system_paths=(f"/usr/share/datasets/{name}",),
        homepage=homepage,
        install_hint=hint,
    )


# MD5 sums are those published with the archives (and used by torchvision and most loaders).
SOURCES: dict[str, DatasetSource] = {
    "mnist": _idx_source(
        "mnist",
        ("mnist", "MNIST/raw", "MNIST"),
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        {
            "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": _idx_source(
        "fashion-mnist",
        ("fashion-mnist", "fashion_mnist", "FashionMNIST/raw", "FashionMNIST"),
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        {
            "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        "https://github.com/zalandoresearch/fashion-mnist",
        "on Debian/Ubuntu: sudo apt install dataset-fashion-mnist",
    ),
    "kmnist": _idx_source(
        "kmnist",
        ("kmnist", "KMNIST/raw", "KMNIST"),
        ("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
        {
            "train-images-idx3-ubyte": "bdb82020997e1d708af4cf47b453dcf7",
            "train-labels-idx1-ubyte": "e144d726b3acfaa3e44228e80efcd344",
            "t10k-images-idx3-ubyte": "5c965bf0a639b31b8f53240b1b52f4d7",
            "t10k-labels-idx1-ubyte": "7320c461ea6c1c855c0b718fb2a4b134",
        },
        "https://github.com/rois-codh/kmnist",
    ),
    "cifar10": DatasetSource(
        name="cifar10",
        required=tuple(
            (f"cifar-10-batches-py/{f}", f)
            for f in (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")
        ),
        files=(
            RemoteFile(
                "cifar-10-python.tar.gz",
                ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
                "c58f30108f718f92721af3b95e74349a",
                extract=True,
            ),
        ),
        dirnames=("cifar10", "cifar-10"),
        system_paths=("/usr/share/datasets/cifar10", "/usr/share/datasets/cifar-10"),
        homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
    ),
    "cifar100": DatasetSource(
        name="cifar100",
        required=(("cifar-100-python/train", "train"), ("cifar-100-python/test", "test")),
        files=(
            RemoteFile(
                "cifar-100-python.tar.gz",
                ("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",),
                "eb9058c3a382ffc7106e4002c42a8d85",
                extract=True,
            ),
        ),
        dirnames=("cifar100", "cifar-100"),
        system_paths=("/usr/share/datasets/cifar100", "/usr/share/datasets/cifar-100"),
        homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
    ),
    "cub200": DatasetSource(
        name="cub200",
        required=tuple(
            (f"CUB_200_2011/{f}", f)
            for f in ("images.txt", "image_class_labels.txt", "train_test_split.txt", "images")
        ),
        files=(
            RemoteFile(
                "CUB_200_2011.tgz",
                ("https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz?download=1",),
                "97eceeb196236b17998738112f37df78",
                extract=True,
            ),
        ),
        dirnames=("cub200", "CUB_200_2011", "cub"),
        system_paths=("/usr/share/datasets/cub200",),
        homepage="https://www.vision.caltech.edu/datasets/cub_200_2011/",
    ),
    "dogs": DatasetSource(
        name="dogs",
        required=(
            ("train_list.mat", "train_list.txt", "lists/train_list.mat", "lists/train_list.txt"),
            ("test_list.mat", "test_list.txt", "lists/test_list.mat", "lists/test_list.txt"),
            ("Images",),
        ),
        files=(
            RemoteFile(
                "images.tar",
                ("http://vision.stanford.edu/aditya86/ImageNetDogs/images.tar",),
                "1bb1f2a596ae7057f99d7d75860002ef",
                extract=True,
            ),
            RemoteFile(
                "lists.tar",
                ("http://vision.stanford.edu/aditya86/ImageNetDogs/lists.tar",),
                "edbb9f16854ec66506b5f09b583e0656",
                extract=True,
            ),
        ),
        dirnames=("dogs", "stanford-dogs", "stanford_dogs", "StanfordDogs"),
        system_paths=("/usr/share/datasets/stanford-dogs",),
        homepage="http://vision.stanford.edu/aditya86/ImageNetDogs/",
    ),
}


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/deephash`` when set, else ``~/.cache/deephash`` (not created here)."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "deephash"


def _source(name: str) -> DatasetSource:
    if name not in SOURCES:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(SOURCES))}")
    return SOURCES[name]


def search_paths(name: str, data_dir: str | Path | None = None) -> list[Path]:
    """Candidate folders for dataset ``name``, in search order (they need not exist)."""
    src = _source(name)
    out: list[Path] = []
    for base, also_itself in (
        (data_dir, True),
        (os.environ.get("DEEPHASH_DATA") or None, True),
        (user_cache_dir(), False),
    ):
        if base is None:
            continue
        base = Path(base).expanduser()
        out.extend(base / d for d in src.dirnames)
        if also_itself:
            out.append(base)
    out.extend(Path(p) for p in src.system_paths)
    seen: set[Path] = set()
    return [p for p in out if not (p in seen or seen.add(p))]  # type: ignore[func-returns-value]


def missing_files(name: str, folder: str | Path) -> list[str]:
    """Required files of ``name`` absent from ``folder`` (one entry per group; empty = complete)."""
    folder = Path(folder)
    return [
        " or ".join(group)
        for group in _source(name).required
        if not any((folder / rel).exists() for rel in group)
    ]


def download_dir(name: str, data_dir: str | Path | None = None) -> Path:
    """Where a download of ``name`` goes: ``<data_dir | $DEEPHASH_DATA | user cache>/<name>``."""
    _source(name)
    base = data_dir or os.environ.get("DEEPHASH_DATA") or user_cache_dir()
    return Path(base).expanduser() / name


def find_dataset(name: str, data_dir: str | Path | None = None) -> Path:
    """The first searched folder that holds every required file of ``name``.

    Raises DatasetNotFoundError (a FileNotFoundError) naming every folder searched and the ways to
    get the files.
    """
    candidates = search_paths(name, data_dir)
    for folder in candidates:
        if folder.is_dir() and not missing_files(name, folder):
            return folder
    src = _source(name)
    lines = [f"dataset {name!r} not found. Searched, in order:"]
    for folder in candidates:
        state = (
            "missing folder" if not folder.is_dir() else f"lacks {missing_files(name, folder)[0]}"
        )
        lines.append(f"  {folder} ({state})")
    lines.append(
        "  (pass --data-dir / data_dir=, or set $DEEPHASH_DATA, to search another folder first)"
    )
    lines.append("To get it:")
    if src.install_hint:
        lines.append(f"  - {src.install_hint}")
    lines.append(
        f"  - run `deephash data download {name} [--data-dir DIR]` (or pass download=True / --download);"
        f" it goes to {download_dir(name, data_dir)}"
    )
    urls = ", ".join(f.urls[0] for f in src.files)
    lines.append(
        f"  - or fetch {urls} yourself and put the (extracted) files in one of the folders above"
    )
    raise DatasetNotFoundError("\n".join(lines))
