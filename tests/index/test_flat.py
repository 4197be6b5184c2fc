import numba
import numpy as np
import pytest

from deephash.index import HammingIndex

BITS = [8, 12, 32, 48, 64, 100, 128, 256]


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("kind", ["random", "clustered"])
def test_knn_matches_brute_force(refs, bits: int, kind: str) -> None:
    rng = np.random.default_rng(bits)
    x = refs[kind](rng, 400, bits)
    q = np.concatenate([refs[kind](rng, 20, bits), x[:5]])
    index = HammingIndex(bits)
    index.add(x)
    ids = np.arange(len(x))
    for k in (1, 5, 10, 100, 500):
        d, i = index.search(q, k)
        assert d.dtype == np.int32 and i.dtype == np.int64 and d.shape == (len(q), k)
        bd, bi = refs["knn"](q, x, ids, k)
        np.testing.assert_array_equal(d, bd)
        np.testing.assert_array_equal(i, bi)


def test_single_thread_and_many_query_blocks_agree(refs) -> None:
    rng = np.random.default_rng(0)
    x = refs["clustered"](rng, 20_000, 64)  # spans several database blocks
    q = refs["clustered"](rng, 300, 64)
    index = HammingIndex(64)
    index.add(x)
    d, i = index.search(q, 7)
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        d1, i1 = index.search(q, 7)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(d, d1)
    np.testing.assert_array_equal(i, i1)
    bd, bi = refs["knn"](q[:40], x, np.arange(len(x)), 7)
    np.testing.assert_array_equal(d[:40], bd)
    np.testing.assert_array_equal(i[:40], bi)


def test_one_query_at_a_time_runs_without_threads_and_is_exact(refs) -> None:
    # A single query takes the unthreaded kernel; it must equal brute force and the batch.
    rng = np.random.default_rng(1)
    x = refs["clustered"](rng, 20_000, 64)
    q = np.concatenate([refs["clustered"](rng, 6, 64), x[:2]])
    index = HammingIndex(64)
    index.add(x)
    bd, bi = refs["knn"](q, x, np.arange(len(x)), 40)
    for j in range(len(q)):
        d, i = index.search(q[j : j + 1], 40)
        np.testing.assert_array_equal(d[0], bd[j])
        np.testing.assert_array_equal(i[0], bi[j])


@pytest.mark.parametrize("bits", [12, 64, 100])
def test_range_search_matches_brute_force(refs, bits: int) -> None:
    rng = np.random.default_rng(1)
    x = refs["clustered"](rng, 500, bits)
    q = refs["clustered"](rng, 15, bits)
    index = HammingIndex(bits)
    index.add(x)
    for radius in (0, 1, 3, bits // 3, bits + 5):
        lims, d, i = index.range_search(q, radius)
        bl, bd, bi = refs["range"](q, x, np.arange(len(x)), radius)
        np.testing.assert_array_equal(lims, bl)
        np.testing.assert_array_equal(d, bd)
        np.testing.assert_array_equal(i, bi)
