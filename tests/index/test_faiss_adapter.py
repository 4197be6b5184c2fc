import numpy as np
import pytest

from deephash.index import create_index, load_index

faiss = pytest.importorskip("faiss")


@pytest.mark.parametrize("bits", [8, 12, 64, 100, 256])
@pytest.mark.parametrize("kind", ["random", "clustered"])
def test_faiss_flat_matches_brute_force(refs, bits: int, kind: str) -> None:
    rng = np.random.default_rng(bits + 7)
    x = refs[kind](rng, 300, bits)
    q = refs[kind](rng, 12, bits)
    ids = rng.permutation(10_000)[:300].astype(np.int64)
    index = create_index("faiss:BFlat", bits)
    index.add(x[:100], ids=ids[:100])
    index.add(x[100:], ids=ids[100:])  # out of order: faiss is rebuilt in id order
    for k in (1, 5, 10, 100, 400):
        d, i = index.search(q, k)
        bd, bi = refs["knn"](q, x, ids, k)
        np.testing.assert_array_equal(d, bd)
        np.testing.assert_array_equal(i, bi)
    lims, d, i = index.range_search(q, bits // 3)
    bl, bd, bi = refs["range"](q, x, ids, bits // 3)
    np.testing.assert_array_equal(lims, bl)
    np.testing.assert_array_equal(d, bd)
    np.testing.assert_array_equal(i, bi)


@pytest.mark.parametrize("factory", ["BIVF4", "BHNSW8", "BHash2x16"])
def test_approximate_backends_run_and_round_trip(refs, tmp_path, factory: str) -> None:
    rng = np.random.default_rng(3)
    x = refs["clustered"](rng, 500, 64)
    index = create_index(f"faiss:{factory}", 64, nprobe=4, ef_search=128)
    index.add(x)
    d, i = index.search(x[:20], 5)
    # a code's own copy is always found at distance 0 by these backends on this easy data
    assert np.all(d[:, 0] == 0)
    dist = np.bitwise_count(x[:20, None, :] ^ x[np.maximum(i, 0)]).sum(-1)
    np.testing.assert_array_equal(np.where(i >= 0, dist, -1), d)
    index.save(tmp_path / "f.dhi")
    loaded = load_index(tmp_path / "f.dhi")
    d2, i2 = loaded.search(x[:20], 5)
    np.testing.assert_array_equal(d, d2)
    np.testing.assert_array_equal(i, i2)


def test_bad_factory_string_is_clear() -> None:
    with pytest.raises(ValueError, match="faiss cannot build"):
        create_index("faiss:NotAnIndex", 64)
    with pytest.raises(ValueError, match="factory string"):
        create_index("faiss:", 64)
