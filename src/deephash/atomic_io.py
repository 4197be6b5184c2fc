"""Atomic file writes and checkpoint IO, the ground floor that training, evaluation and index share.

Every writer goes through :func:`atomic_write`: a temporary file in the target's folder, flushed and
fsynced, then renamed over the target, so a reader (or a process restarted after a crash) sees the
old file or the whole new one, never a partial one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch

__all__ = [
    "atomic_copy",
    "atomic_save_npz",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "load_checkpoint",
    "save_checkpoint",
]


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], Any]) -> None:
    """Call ``write(f)`` on a binary temp file beside ``path``, fsync it, rename it to ``path``.

    The folder is created if needed; on any error the temp file is removed and ``path`` keeps its
    old content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write bytes so that readers see the old file or the whole new one, never a partial one."""
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_save_npz(path: Path, *, compressed: bool = False, **arrays: Any) -> None:
    """``numpy.savez`` (or ``savez_compressed``) written atomically."""
    import numpy as np

    save = np.savez_compressed if compressed else np.savez
    atomic_write(path, lambda f: save(f, **arrays))


def atomic_copy(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` atomically."""
    with open(src, "rb") as f_in:
        atomic_write(dst, lambda f: shutil.copyfileobj(f_in, f))


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` a state dict atomically."""
    atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`, with a clear error when it is unusable."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # torch raises several types for truncated/foreign files
        raise ValueError(
            f"checkpoint {path} cannot be read ({exc}); it may be truncated or not a deephash checkpoint"
        ) from exc
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{path} is not a deephash checkpoint (no 'model' entry)")
    return state
