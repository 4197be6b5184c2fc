"""Atomic file writes and checkpoints: write to a temp file in the same folder, then rename."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "atomic_save_npz",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "load_checkpoint",
    "save_checkpoint",
]


def _atomic(path: Path, write: Any) -> None:
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
    _atomic(Path(path), lambda f: f.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_save_npz(path: Path, *, compressed: bool = False, **arrays: Any) -> None:
    """``numpy.savez`` (or ``savez_compressed``) written atomically."""
    import numpy as np

    save = np.savez_compressed if compressed else np.savez
    _atomic(Path(path), lambda f: save(f, **arrays))


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` a state dict atomically."""
    _atomic(Path(path), lambda f: torch.save(state, f))


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
