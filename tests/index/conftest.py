"""Brute-force references and code generators shared by the index tests."""

from collections.abc import Callable

import numpy as np
import pytest


def _distances(q: np.ndarray, x: np.ndarray) -> np.ndarray:
    # independent of deephash: byte-wise XOR + numpy's popcount
    return np.bitwise_count(q[:, None, :] ^ x[None, :, :]).sum(-1).astype(np.int64)


def brute_knn(
    q: np.ndarray, x: np.ndarray, ids: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k-NN ordered by (distance, id), padded with -1 like the index contract."""
    dist = _distances(q, x)
    out_d = np.full((q.shape[0], k), -1, dtype=np.int64)
    out_i = np.full((q.shape[0], k), -1, dtype=np.int64)
    for r, row in enumerate(dist):
        order = np.lexsort((ids, row))[:k]
        out_d[r, : len(order)] = row[order]
        out_i[r, : len(order)] = ids[order]
    return out_d, out_i


def brute_range(
    q: np.ndarray, x: np.ndarray, ids: np.ndarray, radius: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dist = _distances(q, x)
    lims, ds, js = [0], [], []
    for row in dist:
        keep = np.flatnonzero(row < radius)
        order = keep[np.lexsort((ids[keep], row[keep]))]
        ds.append(row[order])
        js.append(ids[order])
        lims.append(lims[-1] + len(order))
    return np.array(lims), np.concatenate(ds), np.concatenate(js)


def assert_knn(index, q: np.ndarray, x: np.ndarray, ids: np.ndarray, k: int) -> None:
    """``index.search(q, k)`` equals brute force over codes ``x`` with ``ids``."""
    d, i = index.search(q, k)
    bd, bi = brute_knn(q, x, ids, k)
    np.testing.assert_array_equal(d, bd)
    np.testing.assert_array_equal(i, bi)


def assert_range(index, q: np.ndarray, x: np.ndarray, ids: np.ndarray, radius: int) -> None:
    """``index.range_search(q, radius)`` equals brute force over codes ``x`` with ``ids``."""
    for got, want in zip(index.range_search(q, radius), brute_range(q, x, ids, radius)):
        np.testing.assert_array_equal(got, want)


def random_codes(rng: np.random.Generator, n: int, bits: int) -> np.ndarray:
    x = rng.integers(0, 256, (n, (bits + 7) // 8), dtype=np.uint8)
    if bits % 8:
        x[:, -1] &= (1 << (bits % 8)) - 1
    return x


def clustered_codes(rng: np.random.Generator, n: int, bits: int, centres: int = 4) -> np.ndarray:
    """Codes near a few centres (a couple of flipped bits each): many exact ties and duplicates."""
    c = rng.integers(0, 2, (centres, bits))
    b = c[rng.integers(0, centres, n)]
    flips = rng.random((n, bits)) < 2.0 / bits
    return np.packbits(b ^ flips, axis=1, bitorder="little")


@pytest.fixture
def refs() -> dict[str, Callable[..., object]]:
    return {
        "knn": brute_knn,
        "range": brute_range,
        "assert_knn": assert_knn,
        "assert_range": assert_range,
        "random": random_codes,
        "clustered": clustered_codes,
    }
