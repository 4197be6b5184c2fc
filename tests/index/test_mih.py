import numpy as np
import pytest

from deephash.index import MultiIndexHashing, default_num_tables

BITS = [8, 12, 32, 48, 64, 100, 128, 256]


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("kind", ["random", "clustered"])
def test_knn_matches_brute_force(refs, bits: int, kind: str) -> None:
    rng = np.random.default_rng(bits + 1)
    x = refs[kind](rng, 400, bits)
    q = np.concatenate([refs[kind](rng, 20, bits), x[:5]])
    ids = np.arange(len(x))
    for m in {None, max(1, -(-bits // 24)), max(min(bits, 5), -(-bits // 24))}:
        index = MultiIndexHashing(bits, num_tables=m)
        index.add(x)
        for k in (1, 5, 10, 100, 500):
            d, i = index.search(q, k)
            bd, bi = refs["knn"](q, x, ids, k)
            np.testing.assert_array_equal(d, bd, err_msg=f"m={m} k={k}")
            np.testing.assert_array_equal(i, bi, err_msg=f"m={m} k={k}")


@pytest.mark.parametrize("bits", [12, 64, 100])
def test_range_search_matches_brute_force(refs, bits: int) -> None:
    rng = np.random.default_rng(2)
    x = refs["clustered"](rng, 600, bits)
    q = refs["random"](rng, 10, bits)
    q = np.concatenate([q, x[:10]])
    index = MultiIndexHashing(bits, num_tables=5)
    index.add(x)
    for radius in (0, 1, 2, 5, bits // 3, bits + 1):
        lims, d, i = index.range_search(q, radius)
        bl, bd, bi = refs["range"](q, x, np.arange(len(x)), radius)
        np.testing.assert_array_equal(lims, bl)
        np.testing.assert_array_equal(d, bd)
        np.testing.assert_array_equal(i, bi)


def test_default_num_tables_follows_paper() -> None:
    # m = bits / log2(n): 64 bits, 2^16 codes -> 4 tables of 16 bits
    assert default_num_tables(64, 2**16) == 4
    assert default_num_tables(64, 10_000_000) == 3
    # never a substring over 24 bits, never more tables than bits
    assert default_num_tables(256, 100) == round(256 / np.log2(100))  # 39 tables of 6-7 bits
    assert default_num_tables(64, 2**40) == 3  # 2 would need 32-bit substrings
    assert default_num_tables(8, 2) == 8


def test_rejects_bad_num_tables() -> None:
    with pytest.raises(ValueError, match="at most 24"):
        MultiIndexHashing(64, num_tables=2)
    with pytest.raises(ValueError, match="num_tables"):
        MultiIndexHashing(16, num_tables=17)
