"""Input checks shared by the classical hashing baselines."""

from __future__ import annotations

import numpy as np


def check_features(x: np.ndarray, name: str = "X") -> np.ndarray:
    """float64 (n, d) copy-free view of ``x``; clear errors for bad shapes or values."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n, d), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must be non-empty, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def check_bits(bits: int) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int | np.integer) or bits <= 0:
        raise ValueError(f"bits must be a positive int, got {bits!r}")
    return int(bits)
