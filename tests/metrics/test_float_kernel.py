"""The float kernel's keys are a fixed sequential computation: bit for bit equal to a numpy loop
that performs the same IEEE operations one at a time, on any CPU, at any position and blocking."""

import numpy as np
import pytest

from deephash.metrics import mean_average_precision
from deephash.metrics._float_kernel import float_keys, normalize_rows, tile_database


def sequential_norm_rows(x: np.ndarray) -> np.ndarray:
    """Reference for normalize_rows: float64 sum of squares in dimension order, one op at a time."""
    s = np.zeros(x.shape[0])
    for k in range(x.shape[1]):
        v = x[:, k].astype(np.float64)
        s = s + v * v
    nrm = np.maximum(np.sqrt(s), 1e-300)
    return (x.astype(np.float64) / nrm[:, None]).astype(x.dtype)


def sequential_keys(q: np.ndarray, db: np.ndarray, cosine: bool) -> np.ndarray:
    """Reference keys (nq, n): each a sum over the dimensions in order, in the input dtype, with
    separately rounded multiply and add (numpy never fuses them)."""
    acc = np.zeros((q.shape[0], db.shape[0]), dtype=q.dtype)
    for k in range(q.shape[1]):
        if cosine:
            acc = acc + q[:, k, None] * db[None, :, k]
        else:
            t = q[:, k, None] - db[None, :, k]
            acc = acc + t * t
    return -acc if cosine else acc


def bits(x: np.ndarray) -> np.ndarray:
    return x.view(np.uint32 if x.dtype == np.float32 else np.uint64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cosine", [False, True])
def test_keys_equal_the_sequential_reference_bit_for_bit(dtype, cosine) -> None:
    rng = np.random.default_rng(0)
    q = (rng.standard_normal((13, 37)) * 3).astype(dtype)
    db = (rng.standard_normal((300, 37)) * 3).astype(dtype)
    if cosine:
        np.testing.assert_array_equal(bits(normalize_rows(q)), bits(sequential_norm_rows(q)))
        q, db = normalize_rows(q), normalize_rows(db)
    want = sequential_keys(q, db, cosine)
    for tile in (1, 8, 100, 512):
        got = float_keys(q, tile_database(db, tile), db.shape[0], cosine)
        np.testing.assert_array_equal(bits(got), bits(want))


def test_normalize_rows_matches_the_reference_and_keeps_zero_rows() -> None:
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((50, 9)) * 10.0 ** rng.integers(-20, 20, (50, 1))).astype(np.float32)
    x[3] = 0
    got = normalize_rows(x)
    np.testing.assert_array_equal(bits(got), bits(sequential_norm_rows(x)))
    assert np.all(got[3] == 0)
    np.testing.assert_allclose(np.linalg.norm(np.delete(got, 3, 0), axis=1), 1, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cosine", [False, True])
def test_duplicate_rows_get_identical_keys_in_any_tile_and_query_group(dtype, cosine) -> None:
    # The fault this kernel fixes: a GEMM gave copies of one row different last bits depending
    # on where they sat. Copies here fall at tile starts, ends and middles, and in different
    # lanes of the four-query groups.
    rng = np.random.default_rng(2)
    db = rng.standard_normal((1100, 64)).astype(dtype)
    spots = [3, 7, 8, 511, 512, 513, 700, 1023, 1024, 1099]
    db[spots] = db[0]
    q = rng.standard_normal((11, 64)).astype(dtype)
    q[[4, 5, 10]] = q[1]
    if cosine:
        q, db = normalize_rows(q), normalize_rows(db)
    first = None
    for tile in (7, 64, 512, 1100):
        keys = float_keys(q, tile_database(db, tile), db.shape[0], cosine)
        for s in spots:
            np.testing.assert_array_equal(bits(keys[:, s]), bits(keys[:, 0]))
        for r in (4, 5, 10):
            np.testing.assert_array_equal(bits(keys[r]), bits(keys[1]))
        first = keys if first is None else first
        np.testing.assert_array_equal(bits(keys), bits(first))


def test_duplicates_tie_and_rank_by_database_order_at_scale(ref) -> None:
    # Many copies of a few rows spread over several tiles and query blocks: mAP equals the
    # brute-force reference, which ranks equal distances by database index.
    rng = np.random.default_rng(3)
    base = rng.standard_normal((40, 6))
    db = base[rng.integers(0, 40, 1500)]
    dl = rng.integers(0, 4, 1500)
    q = base[rng.integers(0, 40, 6)] + 0.1 * rng.standard_normal((6, 6))
    ql = rng.integers(0, 4, 6)
    for distance in ("cosine", "euclidean"):
        got = mean_average_precision(q, ql, db, dl, distance=distance, k=700)
        assert got == pytest.approx(ref.mean_ap(q, ql, db, dl, distance, 700), abs=1e-12)
