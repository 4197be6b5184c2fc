"""The image store: a file a full disk refused waits in memory until a flush writes it; a
restore rewrites the logged images and deletes the files no item references."""

import errno
from pathlib import Path
from typing import Any

import pytest

from deephash.collection.image_store import ImageStore
from deephash.collection.items import Item


def test_a_refused_image_is_written_by_the_next_flush(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ImageStore(tmp_path)
    real_write = ImageStore.write

    def no_space(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    store.store("1.png", b"one")
    monkeypatch.setattr(ImageStore, "write", no_space)
    store.store("2.png", b"two")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.png"]
    monkeypatch.setattr(ImageStore, "write", real_write)
    store.flush()
    assert (tmp_path / "2.png").read_bytes() == b"two"
    store.delete("1.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2.png"]


def test_restore_rewrites_logged_images_and_deletes_orphans(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "0.png").write_bytes(b"kept")
    (folder / "9.png").write_bytes(b"orphan")
    items = {
        0: Item(0, None, None, "0.png", 0.0),
        1: Item(1, None, None, "1.jpg", 0.0),
        2: Item(2, None, None, None, 0.0),
    }
    ImageStore(folder).restore(items, {1: b"from the log"})
    assert sorted(p.name for p in folder.iterdir()) == ["0.png", "1.jpg"]
    assert (folder / "0.png").read_bytes() == b"kept"
    assert (folder / "1.jpg").read_bytes() == b"from the log"
