"""A writable collection's log and its compaction: folding the log into a new snapshot.

An addition or removal appends one fsynced record (:meth:`Journal.append`). A compaction writes
the image files whose bytes only the log holds (and fsyncs them), a new snapshot (temp + rename),
then replaces the log by one holding only a ``begin`` record (temp + rename). A crash between the
two renames replays the old log over the new snapshot, which is idempotent by id (see
:mod:`.replay`). The new log replaces the old one before the old one is closed, so a failure to
write it (disk full) leaves the old log open and in use. An automatic compaction (the log is
long) that fails is logged, not raised, and retried ``RETRY_S`` later: the change that triggered
it is already durable.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from deephash.collection.image_store import ImageStore
from deephash.collection.layout import LOG_FILE
from deephash.collection.log import AppendLog, write_new_log
from deephash.collection.snapshot import save_snapshot, snapshot_index
from deephash.collection.view import View

__all__ = ["RETRY_S", "Journal", "compact_folder"]

RETRY_S = 30.0  # after a failed automatic compaction (e.g. disk full), wait this long
_log = logging.getLogger(__name__)


def compact_folder(
    directory: Path,
    view: View,
    snapshot_kind: str,
    bits: int,
    images: ImageStore,
    log: AppendLog,
) -> AppendLog:
    """Fold ``log`` into a new snapshot of ``view`` (a ``snapshot_kind`` index of ``bits``-bit
    codes, see :func:`~deephash.collection.snapshot.snapshot_index`) in collection folder
    ``directory``; returns the new, empty log (``log`` is closed once it is replaced)."""
    snapshot = snapshot_index(view, snapshot_kind, bits)
    # the image files whose bytes only the log holds go to disk before the log is dropped
    images.flush()
    save_snapshot(directory, snapshot, view)
    write_new_log(directory / LOG_FILE, {"op": "begin", "next_id": view.next_id})
    log.close()
    return AppendLog(directory / LOG_FILE, (directory / LOG_FILE).stat().st_size)


class Journal:
    """The open log of collection folder ``directory`` (``log``, holding ``records`` records),
    compacted into ``snapshot_kind`` snapshots of ``bits``-bit codes (see
    :meth:`maybe_compact` for when)."""

    def __init__(
        self,
        directory: Path,
        log: AppendLog,
        records: int,
        images: ImageStore,
        snapshot_kind: str,
        bits: int,
    ) -> None:
        self.directory = directory
        self.log = log
        self.records = records
        self.images = images
        self.snapshot_kind = snapshot_kind
        self.bits = bits
        self.retry_at = 0.0  # no automatic compaction before this (monotonic s)

    def append(self, record: dict[str, Any]) -> None:
        """Append one record and fsync it (see :class:`~deephash.collection.log.AppendLog`)."""
        self.log.append(record)
        self.records += 1

    def compact(self, view: View) -> View:
        """Fold the log into a new snapshot of ``view``; returns ``view`` without the metadata of
        removed items (readers of older views keep the old mapping)."""
        self.log = compact_folder(
            self.directory, view, self.snapshot_kind, self.bits, self.images, self.log
        )
        self.records = 0
        return replace(view, items={i: view.items[i] for i in view.ids.tolist()})

    def maybe_compact(self, view: View, every: int, max_bytes: int) -> View:
        """Compact when the log holds more than ``every`` records or ``max_bytes`` bytes;
        a failure (disk full) is logged and retried later. Returns the view to publish."""
        if self.records <= every and self.log.size <= max_bytes:
            return view
        if time.monotonic() < self.retry_at:
            return view
        try:
            return self.compact(view)
        except OSError as exc:
            self.retry_at = time.monotonic() + RETRY_S
            _log.warning(
                "%s: compaction failed (%s); the log keeps every change, retrying in %.0f s",
                self.directory,
                exc,
                RETRY_S,
            )
            return view

    def close(self) -> None:
        self.log.close()
