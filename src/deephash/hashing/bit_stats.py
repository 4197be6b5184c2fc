"""Diagnostics of a set of binary codes: bit balance, code diversity, bit correlations.

Codes may be given packed (uint8 (n, ceil(bits / 8)), faiss layout; pass ``bits``) or unpacked
(any (n, bits) array: an entry > 0 is a one-bit, so {-1, +1}, {0, 1} and real values all work).
uint8 input is always read as packed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deephash.codes import unpack_bits

__all__ = [
    "BitStats",
    "as_signed_codes",
    "bit_balance",
    "bit_correlation",
    "bit_stats",
    "distinct_code_fraction",
]


def as_signed_codes(codes: np.ndarray, bits: int | None = None) -> np.ndarray:
    """Unpacked codes int8 (n, bits) in {-1, +1} from packed or unpacked input (see module doc)."""
    arr = np.asarray(codes)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"codes must be a non-empty 2-D array, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        nbits = arr.shape[1] * 8 if bits is None else bits
        return unpack_bits(arr, nbits)
    if bits is not None and bits != arr.shape[1]:
        raise ValueError(f"bits={bits} but the unpacked codes have {arr.shape[1]} columns")
    return np.where(arr > 0, 1, -1).astype(np.int8)


def bit_balance(codes: np.ndarray, bits: int | None = None) -> np.ndarray:
    """Mean of each bit in {-1, +1}: float64 (bits,); 0 is perfectly balanced, ±1 a constant bit."""
    out: np.ndarray = as_signed_codes(codes, bits).mean(axis=0, dtype=np.float64)
    return out


def distinct_code_fraction(codes: np.ndarray, bits: int | None = None) -> float:
    """Number of distinct codes divided by the number of codes, in (0, 1]."""
    signed = as_signed_codes(codes, bits)
    return float(np.unique(signed, axis=0).shape[0] / signed.shape[0])


def bit_correlation(codes: np.ndarray, bits: int | None = None) -> np.ndarray:
    """Pearson correlation between bits: float64 (bits, bits), 1 on the diagonal.

    A constant bit has no defined correlation; its off-diagonal entries are set to 0.
    """
    x = as_signed_codes(codes, bits).astype(np.float64)
    xc = x - x.mean(axis=0)
    std = np.sqrt((xc**2).mean(axis=0))
    cov = xc.T @ xc / x.shape[0]
    denom = np.outer(std, std)
    corr = np.divide(cov, denom, out=np.zeros_like(cov), where=denom > 0)
    np.fill_diagonal(corr, 1.0)
    return corr


@dataclass(frozen=True)
class BitStats:
    """Summary of a code set.

    balance: float64 (bits,) mean of each bit in {-1, +1}.
    max_abs_balance: max_r |balance_r|.
    distinct_fraction: distinct codes / codes.
    mean_abs_correlation, max_abs_correlation: over the off-diagonal bit correlations (0 for 1 bit).
    """

    bits: int
    num_codes: int
    balance: np.ndarray
    max_abs_balance: float
    distinct_fraction: float
    mean_abs_correlation: float
    max_abs_correlation: float


def bit_stats(codes: np.ndarray, bits: int | None = None) -> BitStats:
    """All statistics of :class:`BitStats` for packed or unpacked codes."""
    signed = as_signed_codes(codes, bits)
    n, nbits = signed.shape
    balance = bit_balance(signed)
    corr = bit_correlation(signed)
    off = np.abs(corr[~np.eye(nbits, dtype=bool)])
    return BitStats(
        bits=nbits,
        num_codes=n,
        balance=balance,
        max_abs_balance=float(np.abs(balance).max()),
        distinct_fraction=distinct_code_fraction(signed),
        mean_abs_correlation=float(off.mean()) if off.size else 0.0,
        max_abs_correlation=float(off.max()) if off.size else 0.0,
    )
