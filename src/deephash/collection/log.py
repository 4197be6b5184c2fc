"""The collection's append-only log: every addition and removal, on disk before it is acknowledged.

Layout: the 8-byte magic ``b"DHLOG\\x00\\x01\\n"``, then records back to back, each::

    length   uint32 little-endian   bytes of the payload
    crc      uint32 little-endian   zlib.crc32 of the payload
    payload  UTF-8 JSON             {"op": "begin" | "add" | "remove", ...}

A record is one whole operation (an ``add`` of several items is one record), written with a
single ``write`` and fsynced before the caller acknowledges it. A process killed mid-write leaves
at most one incomplete or garbled record at the end: :func:`read_log` stops at the first record
whose length runs past the end of the file or whose checksum or JSON is wrong, and reports where
the good records end so the opener can cut the torn tail off. The first record of every log is a
``begin`` record carrying the next free id, so ids are never reused after the log is compacted.
"""

from __future__ import annotations

import errno
import json
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deephash.atomic_io import atomic_write
from deephash.collection._durable import fsync_dir

__all__ = ["LOG_MAGIC", "AppendLog", "LogContents", "read_log", "write_new_log"]

LOG_MAGIC = b"DHLOG\x00\x01\n"
_HEAD = struct.Struct("<II")
_MAX_RECORD = 1 << 30


def encode_record(record: dict[str, Any]) -> bytes:
    """One record as stored: length, CRC-32, JSON payload."""
    payload = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(payload) >= _MAX_RECORD:
        raise ValueError(
            f"log record of {len(payload)} bytes is too large; add fewer items at once"
        )
    return _HEAD.pack(len(payload), zlib.crc32(payload)) + payload


@dataclass
class LogContents:
    """What :func:`read_log` found: the good records, where they end, and the file size."""

    records: list[dict[str, Any]]
    valid_end: int
    size: int

    @property
    def torn_bytes(self) -> int:
        """Bytes after the last good record (a write cut short by a crash)."""
        return self.size - self.valid_end


def read_log(path: str | os.PathLike[str]) -> LogContents:
    """Read every complete, checksum-valid record of the log at ``path``, in order.

    A wrong magic is a ``ValueError`` (not a deephash log); a bad record ends the reading (see the
    module docstring) and everything from it on counts as torn.
    """
    path = Path(path)
    data = path.read_bytes()
    if not data.startswith(LOG_MAGIC):
        raise ValueError(f"{path} is not a deephash collection log (wrong magic bytes)")
    records: list[dict[str, Any]] = []
    pos = len(LOG_MAGIC)
    while pos + _HEAD.size <= len(data):
        length, crc = _HEAD.unpack_from(data, pos)
        start = pos + _HEAD.size
        if length >= _MAX_RECORD or start + length > len(data):
            break
        payload = data[start : start + length]
        if zlib.crc32(payload) != crc:
            break
        try:
            record = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            break
        if not isinstance(record, dict) or "op" not in record:
            break
        records.append(record)
        pos = start + length
    return LogContents(records, pos, len(data))


def write_new_log(path: str | os.PathLike[str], first: dict[str, Any]) -> None:
    """Replace the log at ``path`` by one holding only ``first``, atomically (temp + rename)."""
    path = Path(path)
    record = encode_record(first)
    atomic_write(path, lambda f: f.write(LOG_MAGIC + record))
    fsync_dir(path.parent)


class AppendLog:
    """The open log: appends records and fsyncs them.

    ``valid_end`` (from :func:`read_log`) cuts a torn tail off before the first append, so new
    records never follow garbage.
    """

    def __init__(self, path: str | os.PathLike[str], valid_end: int) -> None:
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_WRONLY)
        if os.fstat(self._fd).st_size != valid_end:
            os.ftruncate(self._fd, max(valid_end, 0))
            os.fsync(self._fd)
        self.size = valid_end
        self.records_since_open = 0

    def append(self, record: dict[str, Any]) -> None:
        """Write one record and fsync it; when this returns, the record survives a crash."""
        raw = encode_record(record)
        try:
            written = os.pwrite(self._fd, raw, self.size)
            if written != len(raw):  # a short write: the disk filled up
                raise OSError(errno.ENOSPC, f"no space left for a log record in {self.path}")
            os.fsync(self._fd)
        except OSError:
            # Cut off whatever part reached the file: the next record must follow a good one,
            # and a record whose fsync failed was never acknowledged.
            try:
                os.ftruncate(self._fd, self.size)
            except OSError:  # the torn tail is cut when the log is next opened
                pass
            raise
        self.size += len(raw)
        self.records_since_open += 1

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
