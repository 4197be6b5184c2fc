"""Shared helpers of the collection tests; puts this folder on sys.path for ``_brute_hits``."""

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from deephash.collection import Collection
from deephash.data.image_folder import list_image_folder

sys.path.insert(0, str(Path(__file__).parent))


def _crash(col: Collection) -> None:
    """Leave the folder as a kill -9 would: no compaction, the lock gone with the process."""
    assert col._journal is not None and col._lock is not None
    col._journal.close()
    col._lock.release()
    col._closed = True


@pytest.fixture()
def crash() -> Callable[[Collection], None]:
    """A function that leaves a collection's folder as a kill -9 would."""
    return _crash


@pytest.fixture()
def files(tiny_png_folder: Path) -> tuple[list[Path], list[str]]:
    """The tiny PNG folder's image paths and their class names."""
    paths, labels, names = list_image_folder(tiny_png_folder)
    return paths, [names[int(c)] for c in labels]
