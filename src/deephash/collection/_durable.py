"""fsync helpers: a folder's entries, and many files at once."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["fsync_dir", "fsync_files"]

_MANY = 64  # more files than this: one syncfs of the file system instead of one fsync each


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """fsync a directory, so that a file created or renamed in it survives a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _syncfs(folder: Path) -> bool:
    """Linux ``syncfs``: flush the whole file system holding ``folder``; False if unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        syncfs = libc.syncfs
    except (OSError, AttributeError):
        return False
    fd = os.open(folder, os.O_RDONLY)
    try:
        return int(syncfs(fd)) == 0
    finally:
        os.close(fd)


def fsync_files(folder: str | os.PathLike[str], names: Sequence[str]) -> None:
    """Make the files ``folder/name`` (those that still exist) and ``folder``'s entries durable.

    Each fsync of a small file costs a journal commit (milliseconds), so a bulk addition of tens of
    thousands of images is flushed with one ``syncfs`` (Linux) or ``sync`` instead.
    """
    folder = Path(folder)
    if len(names) > _MANY:
        if not _syncfs(folder):
            os.sync()
        return
    for name in names:
        try:
            fd = os.open(folder / name, os.O_RDONLY)
        except FileNotFoundError:  # removed since it was written
            continue
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    fsync_dir(folder)
