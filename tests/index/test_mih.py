import numpy as np
import pytest

from deephash.codes import to_words
from deephash.index import MultiIndexHashing, default_num_tables, mih

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


def test_default_num_tables_gives_substrings_of_log2n_minus_6_bits() -> None:
    # 64 bits, 2^22 codes -> substrings of 22 - 6 = 16 bits -> 4 tables
    assert default_num_tables(64, 2**22) == 4
    assert default_num_tables(64, 10_000_000) == 4  # 64 / 17.25 = 3.7
    assert default_num_tables(128, 2**20) == 9  # 128 / 14 = 9.1
    # small databases: substrings of at least 4 bits
    assert default_num_tables(256, 100) == 64
    # never a substring over 24 bits, never more tables than bits
    assert default_num_tables(64, 2**40) == 3  # 64 / 34 would round to 2: 32-bit substrings
    assert default_num_tables(8, 2) == 2


def test_rejects_bad_num_tables() -> None:
    with pytest.raises(ValueError, match="at most 24"):
        MultiIndexHashing(64, num_tables=2)
    with pytest.raises(ValueError, match="num_tables"):
        MultiIndexHashing(16, num_tables=17)


@pytest.mark.parametrize("budget", [1e9, -1e9], ids=["always_probe", "always_scan"])
@pytest.mark.parametrize("bits", [32, 64, 128])
def test_probing_and_scan_fallback_both_exact(refs, monkeypatch, budget: float, bits: int) -> None:
    # Force every query down one path: pure multi-index probing (no visited set, first-table
    # rule for duplicates) or the give-up-and-scan fallback (pilot batch included).
    monkeypatch.setattr(mih, "_BUDGET", budget)
    monkeypatch.setattr(mih, "_PILOT", 4)
    rng = np.random.default_rng(bits + 7)
    x = np.concatenate([refs["clustered"](rng, 500, bits), refs["random"](rng, 300, bits)])
    q = np.concatenate([refs["clustered"](rng, 15, bits), refs["random"](rng, 10, bits), x[:5]])
    ids = np.arange(len(x))
    index = MultiIndexHashing(bits, num_tables=max(2, -(-bits // 24)) if bits > 32 else 4)
    index.add(x)
    for k in (1, 10, 300):
        d, i = index.search(q, k)
        bd, bi = refs["knn"](q, x, ids, k)
        np.testing.assert_array_equal(d, bd, err_msg=f"k={k}")
        np.testing.assert_array_equal(i, bi, err_msg=f"k={k}")
    for radius in (1, 4, bits // 4):
        lims, d, i = index.range_search(q, radius)
        bl, bd, bi = refs["range"](q, x, ids, radius)
        np.testing.assert_array_equal(lims, bl)
        np.testing.assert_array_equal(d, bd)
        np.testing.assert_array_equal(i, bi)


def test_mixed_probe_and_scan_queries_are_merged_in_order(refs, monkeypatch) -> None:
    # A budget that some queries (near duplicates) meet and others (random) exceed.
    monkeypatch.setattr(mih, "_BUDGET", 5.0)
    rng = np.random.default_rng(3)
    x = refs["clustered"](rng, 3000, 64)
    q = np.concatenate([x[:20] ^ np.uint8(1), refs["random"](rng, 20, 64)])[rng.permutation(40)]
    index = MultiIndexHashing(64, num_tables=4)
    index.add(x)
    gave_up = np.zeros(len(q), dtype=np.bool_)
    out_d = np.empty((len(q), 5), np.int32)
    out_p = np.empty((len(q), 5), np.int64)
    index._run(mih.to_words(q), 5, 0, 0, out_d, out_p, np.zeros(1, np.int64), gave_up)
    assert 0 < gave_up.sum() < len(q)
    d, i = index.search(q, 5)
    bd, bi = refs["knn"](q, x, np.arange(len(x)), 5)
    np.testing.assert_array_equal(d, bd)
    np.testing.assert_array_equal(i, bi)
    lims, d, i = index.range_search(q, 9)
    bl, bd, bi = refs["range"](q, x, np.arange(len(x)), 9)
    np.testing.assert_array_equal(lims, bl)
    np.testing.assert_array_equal(d, bd)
    np.testing.assert_array_equal(i, bi)


def test_positions_past_two_to_the_sixteen_are_exact(refs) -> None:
    """Table positions are stored as a low uint16 and a high part: codes beyond position 65,535
    must be found at their own position by the probing kernel (checked against brute force)."""
    rng = np.random.default_rng(3)
    x = refs["random"](rng, 70_000, 64)
    q = x[[3, 65_535, 65_536, 69_999]].copy()
    q[:, 0] ^= 1  # one bit away from their source
    index = MultiIndexHashing(64, num_tables=4)
    index.add(x)
    ids = np.arange(len(x))
    d, i = index.search(q, 1)
    np.testing.assert_array_equal(i[:, 0], [3, 65_535, 65_536, 69_999])
    # the probing kernel itself answered (no query fell back to the exhaustive scan)
    gave_up = np.zeros(len(q), dtype=bool)
    pd, pp = np.empty((len(q), 1), np.int32), np.empty((len(q), 1), np.int64)
    index._run(to_words(q), 1, 0, 0, pd, pp, np.zeros(1, np.int64), gave_up)
    assert not gave_up.any()
    np.testing.assert_array_equal(pp, i)
    bd, bi = refs["knn"](q, x, ids, 1)
    np.testing.assert_array_equal(d, bd)
    np.testing.assert_array_equal(i, bi)
    lims, d, i = index.range_search(q, 4)
    bl, bd, bi = refs["range"](q, x, ids, 4)
    np.testing.assert_array_equal(lims, bl)
    np.testing.assert_array_equal(i, bi)


def _tie_bands(rng: np.random.Generator, n: int, bits: int, bands: int = 5) -> np.ndarray:
    """Class-like codes: most items share one of a few band codes, the rest a flip or two away."""
    centres = rng.integers(0, 2, (bands, bits))
    b = centres[rng.integers(0, bands, n)]
    flips = (rng.random((n, bits)) < 1.0 / bits) & (rng.random((n, 1)) < 0.2)
    return np.packbits(b ^ flips, axis=1, bitorder="little")


@pytest.mark.parametrize("budget", [None, 1e9, -1e9], ids=["default", "probe", "scan"])
@pytest.mark.parametrize("bits", [48, 64, 100])
def test_tie_bands_are_grouped_and_exact(
    refs, monkeypatch, budget: float | None, bits: int
) -> None:
    # Few distinct codes: the tables index them with groups of positions; the k lowest ids of a
    # band tied with other bands, k past the database, ids not consecutive, after a removal.
    if budget is not None:
        monkeypatch.setattr(mih, "_BUDGET", budget)
    rng = np.random.default_rng(bits)
    x = _tie_bands(rng, 3000, bits)
    ids = np.sort(rng.choice(10**6, len(x), replace=False))
    index = MultiIndexHashing(bits)
    index.add(x, ids)
    assert len(index._build()[-1]) == len(x)  # grouped: every position in a group
    q = np.concatenate([x[:6], x[:4] ^ np.uint8(3), refs["random"](rng, 4, bits)])
    for k in (1, 32, 700, 5000):
        refs["assert_knn"](index, q, x, ids, k)
    for radius in (0, 1, 3):
        refs["assert_range"](index, q, x, ids, radius)
    gone = ids[::7]
    index.remove_ids(gone)
    keep = ~np.isin(ids, gone)
    for k in (1, 32, 5000):
        refs["assert_knn"](index, q, x[keep], ids[keep], k)


def test_a_tie_band_costs_no_more_than_k_of_its_positions(monkeypatch) -> None:
    # One code shared by 100,000 items: probing (not the exhaustive scan) answers, within a
    # budget far below one item per band member, with the band's k lowest positions.
    x = np.zeros((100_000, 6), np.uint8)
    x[50_000:, 0] = 1
    index = MultiIndexHashing(48)
    index.add(x)
    monkeypatch.setattr(mih, "_BUDGET", 0.0)  # budget: 64 buckets, about 85 candidates
    gave_up = np.zeros(2, dtype=bool)
    out_d, out_p = np.empty((2, 32), np.int32), np.empty((2, 32), np.int64)
    q = to_words(x[[0, 60_000]])
    index._run(q, 32, 0, 0, out_d, out_p, np.zeros(1, np.int64), gave_up)
    assert not gave_up.any()
    np.testing.assert_array_equal(out_p[0], np.arange(32))
    np.testing.assert_array_equal(out_p[1], np.arange(50_000, 50_032))
    np.testing.assert_array_equal(out_d, 0)


@pytest.mark.parametrize("budget", [1e9, -1e9], ids=["probe", "scan"])
def test_one_query_at_a_time_runs_without_threads_and_is_exact(refs, monkeypatch, budget) -> None:
    # A single query takes the unthreaded kernel (k-NN and range), probing or scanning.
    monkeypatch.setattr(mih, "_BUDGET", budget)
    rng = np.random.default_rng(4)
    x = np.concatenate([refs["clustered"](rng, 2000, 64), _tie_bands(rng, 2000, 64)])
    q = np.concatenate([refs["clustered"](rng, 4, 64), x[[0, 2500]], refs["random"](rng, 2, 64)])
    ids = np.arange(len(x))
    for num_tables in (None, 4):
        index = MultiIndexHashing(64, num_tables=num_tables)
        index.add(x)
        bd, bi = refs["knn"](q, x, ids, 50)
        bl, brd, bri = refs["range"](q, x, ids, 5)
        for j in range(len(q)):
            d, i = index.search(q[j : j + 1], 50)
            np.testing.assert_array_equal(d[0], bd[j])
            np.testing.assert_array_equal(i[0], bi[j])
            lims, rd, ri = index.range_search(q[j : j + 1], 5)
            np.testing.assert_array_equal(lims, [0, bl[j + 1] - bl[j]])
            np.testing.assert_array_equal(rd, brd[bl[j] : bl[j + 1]])
            np.testing.assert_array_equal(ri, bri[bl[j] : bl[j + 1]])
