"""One process at a time on a collection folder: an OS file lock that dies with its holder.

``fcntl.flock`` on ``DIR/lock``, taken without waiting: a second opener (another server, a CLI
writer) is refused with the holder's pid, which the holder writes into the file. The kernel drops
the lock when the holding process exits in any way, ``kill -9`` included, so a stale lock file never
blocks a restart: only a live holder does. The file itself is never deleted (deleting it would let
two processes lock two different files of the same name).
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
from pathlib import Path

__all__ = ["CollectionLockedError", "FolderLock"]


class CollectionLockedError(RuntimeError):
    """The collection is open in another process (a server or a CLI writer)."""


class FolderLock:
    """An exclusive, non-blocking lock on ``path`` (created if missing), held until :meth:`release`.

    flock locks belong to an open file, so a second ``FolderLock`` on the same path is refused even
    inside the same process.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._read_holder(fd)
            os.close(fd)
            raise CollectionLockedError(
                f"collection {self.path.parent} is in use by {holder}; stop that process (a "
                "`deephash serve` or a `deephash collection` writer) or wait for it to finish. "
                "A process that died does not hold the lock, so this one is alive."
            ) from None
        except BaseException:
            os.close(fd)
            raise
        info = f"{os.getpid()} {socket.gethostname()} {' '.join(sys.argv)[:200]}\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode("utf-8", "replace"), 0)
        self._fd = fd

    @staticmethod
    def _read_holder(fd: int) -> str:
        try:
            text = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
        except OSError:
            text = ""
        if not text:
            return "another process (pid not written yet)"
        pid, _, rest = text.partition(" ")
        host, _, cmd = rest.partition(" ")
        return f"process {pid} on {host} ({cmd})" if cmd else f"process {pid} on {host}"

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
