"""How a collection stores its re-rank descriptors: float16 values, or packed bits.

A float kind (``early-stages``, ...) is stored as D float16 values per item (2·D bytes) and held
as float32 for the re-ranking kernel; a binary kind (``instance``) as the signs of its D values
packed to ``ceil(D / 8)`` bytes, stored and held as such, and compared by Hamming distance.
``collection.json`` records which (``rerank.dtype``: ``float16`` or ``bits``); a collection made
before binary kinds existed has ``float16`` or no descriptors at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from deephash.codes import as_packed_rows, code_bytes
from deephash.index.rerank import as_descriptors

__all__ = ["BITS", "DescriptorLayout"]

BITS = "bits"  # ``rerank.dtype`` of a binary kind in collection.json


@dataclass(frozen=True)
class DescriptorLayout:
    """Descriptors of ``kind``, ``dim`` values each, stored as float16 or (``binary``) as
    packed signs."""

    kind: str
    dim: int
    binary: bool

    @classmethod
    def of_settings(cls, settings: dict[str, Any]) -> DescriptorLayout | None:
        """The layout ``collection.json``'s settings name; None without re-ranking."""
        rerank = settings.get("rerank")
        if not rerank:
            return None
        binary = rerank.get("dtype", "float16") == BITS
        return cls(str(rerank["descriptor"]), int(rerank["dim"]), binary)

    @property
    def width(self) -> int:
        """Columns of a stored row: D float16 values, or ``ceil(D / 8)`` bytes."""
        return code_bytes(self.dim) if self.binary else self.dim

    @property
    def stored_dtype(self) -> np.dtype[Any]:
        """The dtype of rows on disk and in the log."""
        return np.dtype(np.uint8) if self.binary else np.dtype("<f2")

    @property
    def bytes_per_item(self) -> int:
        """Bytes a descriptor takes on disk (snapshot and log, before base64)."""
        return self.width * self.stored_dtype.itemsize

    @property
    def resident_bytes_per_item(self) -> int:
        """Bytes a descriptor takes in memory: packed bits as stored, float32 values."""
        return self.width * (1 if self.binary else 4)

    def empty(self) -> np.ndarray:
        """No descriptors: resident rows (0, width)."""
        return np.zeros((0, self.width), np.uint8 if self.binary else np.float32)

    def check(self, x: Any, name: str = "descriptors") -> np.ndarray:
        """Descriptors given by a caller -> resident rows (n, width): packed bits uint8 as given
        for a binary kind, float32 holding the stored float16 values for a float kind. A wrong
        dtype or width is a ``ValueError``."""
        if not self.binary:
            return as_descriptors(x, self.dim, name=name)
        arr = as_packed_rows(x, self.dim, name, f"{self.kind} bits")
        return np.ascontiguousarray(arr)

    def resident(self, stored: np.ndarray) -> np.ndarray:
        """Rows as read from disk -> resident rows."""
        return stored.astype(np.uint8 if self.binary else np.float32)
