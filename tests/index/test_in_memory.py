"""The in-memory storage (ids sorted, consecutive ids kept as a first id, metadata, removals,
files) under the flat and mih backends, against brute force; and a new backend that writes only
``_search`` and ``_range_search``."""

import numpy as np
import pytest

from deephash.index import (
    HammingIndex,
    InMemoryIndex,
    MultiIndexHashing,
    create_index,
    load_index,
)


@pytest.mark.parametrize("cls", [HammingIndex, MultiIndexHashing])
def test_custom_ids_and_chunked_adds_match_brute_force(refs, cls) -> None:
    rng = np.random.default_rng(11)
    x = refs["clustered"](rng, 600, 32)
    ids = rng.permutation(5000)[:600].astype(np.int64)
    index = cls(32)
    for lo, hi in ((0, 100), (100, 350), (350, 600)):
        index.add(x[lo:hi], ids=ids[lo:hi])
    assert index.ntotal == 600
    q = refs["clustered"](rng, 25, 32)
    for k in (1, 10, 100):
        d, i = index.search(q, k)
        bd, bi = refs["knn"](q, x, ids, k)
        np.testing.assert_array_equal(d, bd)
        np.testing.assert_array_equal(i, bi)


def test_default_ids_continue_and_pad_when_k_exceeds_n(refs) -> None:
    rng = np.random.default_rng(12)
    x = refs["random"](rng, 6, 64)
    index = HammingIndex(64)
    index.add(x[:2], ids=[10, 20])
    index.add(x[2:])
    np.testing.assert_array_equal(index.ids, [10, 20, 21, 22, 23, 24])
    d, i = index.search(x[:1], 8)
    assert d[0, 0] == 0 and i[0, 0] == 10
    assert (d[0, 6:] == -1).all() and (i[0, 6:] == -1).all()


def test_metadata_must_be_consistent(refs) -> None:
    x = refs["random"](np.random.default_rng(1), 4, 16)
    index = HammingIndex(16)
    index.add(x[:2], metadata={"label": [0, 1]})
    with pytest.raises(ValueError, match="pass metadata"):
        index.add(x[2:])
    with pytest.raises(ValueError, match="differ"):
        index.add(x[2:], metadata={"path": ["a", "b"]})
    with pytest.raises(ValueError, match="length 2"):
        index.add(x[2:], metadata={"label": [1]})
    index.add(x[2:], ids=[9, 5], metadata={"label": [9, 5]})
    np.testing.assert_array_equal(index.metadata["label"], index.ids)  # reordered with the ids
    with pytest.raises(ValueError, match="not in the index"):
        index.metadata_for([7])


@pytest.mark.parametrize("name", ["flat", "mih", "faiss:BFlat"])
def test_remove_ids_then_search_equals_brute_force_on_the_rest(refs, name) -> None:
    if name.startswith("faiss"):
        pytest.importorskip("faiss")
    rng = np.random.default_rng(13)
    x = refs["clustered"](rng, 400, 48)
    ids = np.arange(0, 800, 2, dtype=np.int64)
    index = create_index(name, 48)
    index.add(x, ids=ids, metadata={"label": ids % 7, "path": [f"p{i}" for i in ids]})
    gone = ids[rng.choice(400, 150, replace=False)]
    assert index.remove_ids(np.concatenate([gone, [1, 3, 9999]])) == 150  # unknown ids ignored
    assert index.remove_ids(gone) == 0
    keep = ~np.isin(ids, gone)
    assert index.ntotal == 250
    np.testing.assert_array_equal(index.ids, ids[keep])
    np.testing.assert_array_equal(index.metadata["label"], (ids % 7)[keep])
    q = refs["clustered"](rng, 20, 48)
    for k in (1, 10, 300):
        d, i = index.search(q, k)
        bd, bi = refs["knn"](q, x[keep], ids[keep], k)
        np.testing.assert_array_equal(d, bd)
        np.testing.assert_array_equal(i, bi)
    new_ids = np.array([1, 3, 5, 7, 9])  # adding after a removal works as before
    index.add(x[:5], ids=new_ids, metadata={"label": new_ids % 7, "path": ["n"] * 5})
    all_x, all_ids = np.concatenate([x[keep], x[:5]]), np.concatenate([ids[keep], new_ids])
    d, i = index.search(q, 30)
    bd, bi = refs["knn"](q, all_x, all_ids, 30)
    np.testing.assert_array_equal(d, bd)
    np.testing.assert_array_equal(i, bi)
    with pytest.raises(ValueError, match="1-D"):
        index.remove_ids(np.zeros((2, 2), dtype=np.int64))


@pytest.mark.parametrize("cls", [HammingIndex, MultiIndexHashing])
def test_consecutive_ids_are_not_stored_and_every_path_agrees_with_explicit_ids(
    refs, cls, tmp_path
) -> None:
    """Consecutive ids (the default) are kept as a first id only; adds, removals, metadata, search,
    range search and files behave exactly as with the ids written out."""
    rng = np.random.default_rng(21)
    x = refs["clustered"](rng, 300, 64)
    q = refs["clustered"](rng, 9, 64)
    index = cls(64)
    index.add(x[:100], ids=np.arange(50, 150), metadata={"n": np.arange(100)})
    index.add(x[100:], metadata={"n": np.arange(100, 300)})  # default ids continue at 150
    assert index._ids is None  # nothing stored per code
    ids = np.arange(50, 350)
    np.testing.assert_array_equal(index.ids, ids)
    for k in (1, 10):
        refs["assert_knn"](index, q, x, ids, k)
    refs["assert_range"](index, q, x, ids, 12)
    np.testing.assert_array_equal(index.metadata_for([349, 50])["n"], [299, 0])
    with pytest.raises(ValueError, match="not in the index"):
        index.metadata_for([350])
    # removing from the end keeps them consecutive; from the middle writes them out
    assert index.remove_ids([349, 348, 10_000]) == 2
    assert index._ids is None and index.ntotal == 298
    assert index.remove_ids([60]) == 1
    assert index._ids is not None
    keep = (ids != 60) & (ids < 348)
    np.testing.assert_array_equal(index.ids, ids[keep])
    refs["assert_knn"](index, q, x[keep], ids[keep], 10)
    # a file written with consecutive ids loads back to the same (compact) index
    index2 = cls(64)
    index2.add(x, ids=ids)
    index2.save(tmp_path / "a.dhi")
    back = load_index(tmp_path / "a.dhi")
    assert back._ids is None
    np.testing.assert_array_equal(back.ids, ids)
    np.testing.assert_array_equal(back.search(q, 5)[1], index2.search(q, 5)[1])


class BruteForceIndex(InMemoryIndex):
    """The smallest backend: numpy distances over storage positions, ties by position."""

    backend = "brute"

    def _distances(self, queries: np.ndarray) -> np.ndarray:
        return np.bitwise_count(queries[:, None, :] ^ self.codes_[None, :, :]).sum(-1)

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        d = self._distances(queries)
        p = np.argsort(d, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(d, p, axis=1), p

    def _range_search(self, queries, radius):
        d = self._distances(queries)
        rows = [np.flatnonzero(row < radius) for row in d]
        rows = [r[np.argsort(row[r], kind="stable")] for r, row in zip(rows, d)]
        lims = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
        dist = np.concatenate([row[r] for r, row in zip(rows, d)])
        return lims, dist, np.concatenate(rows)


def test_a_backend_writing_only_the_position_search_gets_the_whole_contract(refs) -> None:
    # ids out of order across adds, a removal, ties: the storage maps positions to ids so that the
    # results equal brute force by (distance, id).
    rng = np.random.default_rng(3)
    x = refs["clustered"](rng, 300, 24)
    ids = rng.permutation(3000)[:300].astype(np.int64)
    index = BruteForceIndex(24)
    index.add(x[:200], ids=ids[:200])
    index.add(x[200:], ids=ids[200:])
    assert index.remove_ids(ids[:50]) == 50
    q = refs["clustered"](rng, 12, 24)
    for k in (1, 7, 400):
        for got, want in zip(index.search(q, k), refs["knn"](q, x[50:], ids[50:], k)):
            np.testing.assert_array_equal(got, want)
    for got, want in zip(index.range_search(q, 5), refs["range"](q, x[50:], ids[50:], 5)):
        np.testing.assert_array_equal(got, want)
