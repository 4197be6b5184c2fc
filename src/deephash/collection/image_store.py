"""The stored images of a writable collection (``images/<id><suffix>``).

An image's bytes are in the log record of its addition (fsynced) before its file is written, so a
file is written without an fsync of its own: :meth:`ImageStore.flush` (run by a compaction before
it drops the log) writes what a full disk refused and fsyncs what was written since the last one.
"""

from __future__ import annotations

import logging
from pathlib import Path

from deephash.collection._durable import fsync_files
from deephash.collection.items import Item

__all__ = ["ImageStore"]

_log = logging.getLogger(__name__)


class ImageStore:
    """The image files of the collection folder whose ``images/`` folder is ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._unsynced: list[str] = []
        self._pending: dict[str, bytes] = {}  # image files a full disk refused

    def write(self, name: str, data: bytes) -> None:
        """Write an image file (not fsynced: its bytes are in the log until the next compaction,
        which fsyncs it before the log is dropped)."""
        with open(self.folder / name, "wb") as f:
            f.write(data)
        self._unsynced.append(name)

    def store(self, name: str, data: bytes) -> None:
        """Write an image file of an addition whose log record is already durable: a failure (a
        full disk) must not fail the addition, so the bytes wait in memory for the next
        compaction, which writes them before it drops the log that also holds them."""
        try:
            self.write(name, data)
        except OSError as exc:
            (self.folder / name).unlink(missing_ok=True)
            self._pending[name] = data
            _log.warning("%s: image %s kept in memory: %s", self.folder.parent, name, exc)

    def delete(self, name: str) -> None:
        """Forget a removed item's image, on disk and in memory."""
        self._pending.pop(name, None)
        (self.folder / name).unlink(missing_ok=True)

    def flush(self) -> None:
        """Write the images a full disk refused, then fsync every file written since the last
        flush (before a compaction drops the log that holds their bytes)."""
        for name, data in list(self._pending.items()):
            self.write(name, data)
            del self._pending[name]
        fsync_files(self.folder, self._unsynced)
        self._unsynced = []

    def restore(self, items: dict[int, Item], logged: dict[int, bytes]) -> None:
        """After a replay: rewrite the image files the log carries (``logged``: bytes by id,
        whatever a crash kept from the disk) and delete the files no live item (``items``)
        references."""
        self.folder.mkdir(exist_ok=True)
        for item_id, data in logged.items():
            self.write(str(items[item_id].image), data)
        known = {item.image for item in items.values() if item.image}
        for f in self.folder.iterdir():
            if f.name not in known:
                f.unlink()
