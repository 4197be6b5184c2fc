"""Binary codes: sign quantization, bit packing and Hamming distances.

Bit layout (identical to faiss binary indexes, ``faiss.real_to_binary``): bit ``j`` of a code of
``bits`` bits lives in byte ``j // 8`` at bit position ``j % 8``, least significant bit first
(``numpy.packbits(..., bitorder="little")``). A code of ``bits`` bits takes ``ceil(bits / 8)`` bytes;
when ``bits`` is not a multiple of 8 the unused high bits of the last byte are always zero, so they
never add to a Hamming distance.
"""

from __future__ import annotations

import numpy as np
import torch

from deephash._numba import njit, popcount64

__all__ = [
    "as_packed_rows",
    "check_padding_bits",
    "code_bytes",
    "hamming_distance_matrix",
    "pack_bits",
    "sign",
    "to_words",
    "unpack_bits",
]


def code_bytes(bits: int) -> int:
    """Bytes per packed code: ``ceil(bits / 8)``."""
    if bits <= 0:
        raise ValueError(f"bits must be positive, got {bits}")
    return (bits + 7) // 8


def as_packed_rows(x: object, bits: int, what: str = "codes", noun: str = "codes") -> np.ndarray:
    """Packed ``bits``-bit rows given by a caller, checked: uint8 (n, ceil(bits / 8)) (one row
    (nbytes,) becomes (1, nbytes)); another dtype or width, or set padding bits, is a
    ``ValueError`` naming ``what`` (e.g. "queries") and ``noun`` (e.g. "instance bits")."""
    nbytes = code_bytes(bits)
    arr = np.asarray(x)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.dtype != np.uint8 or arr.ndim != 2 or arr.shape[1] != nbytes:
        raise ValueError(
            f"{what} must be packed uint8 {noun} of shape (n, {nbytes}) for {bits}-bit {noun}, "
            f"got {arr.dtype} {arr.shape}"
        )
    check_padding_bits(arr, bits, what)
    return arr


def check_padding_bits(packed: np.ndarray, bits: int, what: str = "codes") -> None:
    """Raise a ValueError when packed codes set any of the unused high bits of their last byte.

    packed: uint8 (n, ceil(bits / 8)). ``what`` names the codes in the message ("query codes").
    Codes of a whole number of bytes have no padding bits and always pass.
    """
    arr = np.asarray(packed)
    if bits % 8 and arr.ndim == 2 and arr.shape[0] and np.any(arr[:, -1] >> (bits % 8)):
        raise ValueError(
            f"{what} set padding bits beyond bit {bits - 1} (the unused high bits of the last byte must "
            "be zero; pack codes with deephash.codes.pack_bits)"
        )


def sign(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """Sign quantization to {-1, +1}; zero maps to +1 so that every bit is defined.

    x: float (n, bits) relaxed codes or embeddings. Returns int8 (n, bits) with values in {-1, +1}.
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    return np.where(arr >= 0, 1, -1).astype(np.int8)


def pack_bits(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """Pack codes into uint8 bytes in the faiss layout.

    x: (n, bits) array; an entry is a one-bit when it is > 0 (so {-1,+1}, {0,1} and raw real
    values all work, like ``faiss.real_to_binary``). Returns uint8 (n, ceil(bits / 8)).
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"pack_bits expects a 2-D array (n, bits), got shape {arr.shape}")
    return np.packbits(arr > 0, axis=1, bitorder="little")


def unpack_bits(packed: np.ndarray, bits: int, *, signed: bool = True) -> np.ndarray:
    """Inverse of :func:`pack_bits`.

    packed: uint8 (n, ceil(bits / 8)). Returns int8 (n, bits) in {-1, +1} when ``signed`` else {0, 1}.
    """
    packed = np.asarray(packed)
    if packed.dtype != np.uint8 or packed.ndim != 2:
        raise ValueError(
            f"packed codes must be uint8 of shape (n, bytes), got {packed.dtype} {packed.shape}"
        )
    if packed.shape[1] != code_bytes(bits):
        raise ValueError(
            f"packed codes have {packed.shape[1]} bytes per row but {bits} bits need {code_bytes(bits)}"
        )
    b = np.unpackbits(packed, axis=1, count=bits, bitorder="little").astype(np.int8)
    return (2 * b - 1).astype(np.int8) if signed else b


def to_words(packed: np.ndarray) -> np.ndarray:
    """View packed codes as little-endian uint64 words, zero-padding each row to a multiple of 8 bytes.

    packed: uint8 (n, nbytes). Returns uint64 (n, ceil(nbytes / 8)), C-contiguous. The Hamming
    distance between two rows equals the sum of popcounts of the XOR of their words.
    """
    packed = np.ascontiguousarray(packed, dtype=np.uint8)
    if packed.ndim != 2:
        raise ValueError(f"packed codes must be 2-D (n, bytes), got shape {packed.shape}")
    n, nbytes = packed.shape
    nwords = (nbytes + 7) // 8
    if nbytes != nwords * 8:
        padded = np.zeros((n, nwords * 8), dtype=np.uint8)
        padded[:, :nbytes] = packed
        packed = padded
    return packed.view("<u8").reshape(n, nwords)


@njit(parallel=False)
def _hamming_matrix(
    a: np.ndarray, b: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - jit
    for i in range(a.shape[0]):
        for j in range(b.shape[0]):
            d = 0
            for w in range(a.shape[1]):
                d += popcount64(a[i, w] ^ b[j, w])
            out[i, j] = d


def hamming_distance_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All pairwise Hamming distances between packed codes.

    a: uint8 (na, nbytes); b: uint8 (nb, nbytes). Returns int32 (na, nb). Meant for modest sizes;
    the index and the metrics have chunked, multi-threaded kernels for large ones.
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"code widths differ or not 2-D: {a.shape} vs {b.shape}")
    out = np.empty((a.shape[0], b.shape[0]), dtype=np.int32)
    _hamming_matrix(to_words(a), to_words(b), out)
    return out
