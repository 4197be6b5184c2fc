"""The snapshot of a collection's re-rank descriptors: ``descriptors.npz`` beside ``index.dhx``.

An uncompressed ``.npz`` (no pickle; zip CRC-32 per array) holding ``ids`` int64 (n,) ascending and
``descriptors`` float16 (n, D) (a binary kind: uint8 (n, ceil(D / 8)), packed bits; see
:mod:`.descriptor_layout`), one row per id, written atomically (temp + fsync + rename).
``compact`` writes it *before* the code snapshot, and the opener takes each item's descriptor by
id (the log's ``add`` records carry the descriptors of later items), so a crash between the two
renames still gives every live item its descriptor: rows of ids the snapshot lacks are ignored.

Descriptors are also carried in the log as ``"desc"``: base64 of the float16 values,
little-endian (2·D bytes, about 2.7·D characters), or of the packed bits.
"""

from __future__ import annotations

import base64
import io
import os
import zipfile
from pathlib import Path

import numpy as np

from deephash.atomic_io import atomic_write

__all__ = [
    "DESCRIPTOR_FILE",
    "decode_descriptor",
    "encode_descriptor",
    "read_descriptors",
    "write_descriptors",
]

DESCRIPTOR_FILE = "descriptors.npz"
_DTYPE = np.dtype("<f2")


def _stored_dtype(rows: np.ndarray) -> np.dtype:  # type: ignore[type-arg]
    """How rows are stored: packed bits (uint8) as they are, any float as float16."""
    return np.dtype(np.uint8) if np.asarray(rows).dtype == np.uint8 else _DTYPE


def encode_descriptor(row: np.ndarray) -> str:
    """A descriptor float (D,) -> base64 text of its float16 little-endian bytes (log records);
    packed bits uint8 (D / 8,) -> base64 of those bytes."""
    row = np.asarray(row)
    return base64.b64encode(row.astype(_stored_dtype(row)).tobytes()).decode("ascii")


def decode_descriptor(text: str, dim: int, dtype: np.dtype = _DTYPE) -> np.ndarray:  # type: ignore[type-arg]
    """The inverse of :func:`encode_descriptor`: ``dtype`` (float16 or uint8) (dim,);
    ``ValueError`` on a wrong size."""
    dtype = np.dtype(dtype)
    raw = base64.b64decode(text, validate=True)
    if len(raw) != dtype.itemsize * dim:
        raise ValueError(
            f"a descriptor of {len(raw)} bytes, expected {dtype.itemsize * dim} ({dim} {dtype})"
        )
    return np.frombuffer(raw, dtype=dtype).copy()


def write_descriptors(
    path: str | os.PathLike[str], ids: np.ndarray, descriptors: np.ndarray
) -> None:
    """Write ids int64 (n,) and descriptors (n, D) atomically: floats stored as float16, packed
    bits (uint8) as they are."""
    ids = np.asarray(ids, dtype=np.int64)
    desc = np.asarray(descriptors)
    desc = desc.astype(_stored_dtype(desc))
    if desc.ndim != 2 or len(desc) != len(ids):
        raise ValueError(f"{len(ids)} ids but descriptors of shape {desc.shape}")

    def write(f: io.BufferedIOBase) -> None:  # type: ignore[type-arg]
        np.savez(f, ids=ids, descriptors=desc)

    atomic_write(path, write)  # type: ignore[arg-type]


def read_descriptors(
    path: str | os.PathLike[str],
    dim: int,
    dtype: np.dtype = _DTYPE,  # type: ignore[type-arg]
) -> tuple[np.ndarray, np.ndarray]:
    """(ids int64 (n,), descriptors ``dtype`` (n, dim)) of a descriptor snapshot (float16
    values, or uint8 packed bits with dim their bytes); a missing file is no descriptors. A
    damaged file, another dtype or a wrong width is a ``ValueError``."""
    path = Path(path)
    dtype = np.dtype(dtype)
    if not path.exists():
        return np.zeros(0, np.int64), np.zeros((0, dim), dtype)
    try:
        with np.load(path, allow_pickle=False) as f:
            ids = np.asarray(f["ids"], dtype=np.int64)
            desc = np.asarray(f["descriptors"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path} is not a readable descriptor snapshot: {exc}") from None
    if desc.dtype != dtype or desc.ndim != 2 or desc.shape != (len(ids), dim):
        raise ValueError(
            f"{path} holds descriptors {desc.dtype} {desc.shape} for {len(ids)} ids; this "
            f"collection stores {dtype} descriptors of width {dim}"
        )
    return ids, desc
