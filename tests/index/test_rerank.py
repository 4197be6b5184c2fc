import numpy as np
import pytest

from deephash.codes import hamming_distance_matrix
from deephash.index import create_index
from deephash.index.rerank import RerankIndex, as_descriptors, rerank


def brute_force(q_code, q_desc, codes, desc, ids, k, kp, radius=None):  # type: ignore[no-untyped-def]
    """Top-kp by (Hamming, id), then the k best by (score desc, Hamming, id), in plain Python."""
    ham = hamming_distance_matrix(q_code[None, :], codes)[0]
    cand = sorted(range(len(ids)), key=lambda j: (int(ham[j]), int(ids[j])))[:kp]
    if radius is not None:
        cand = [j for j in cand if ham[j] <= radius]
    qd = as_descriptors(q_desc, desc.shape[1])[0].astype(np.float64)
    dd = as_descriptors(desc, desc.shape[1]).astype(np.float64)
    score = {j: 1.0 - float(np.sum((qd - dd[j]) ** 2)) / 2.0 for j in cand}
    best = sorted(cand, key=lambda j: (-score[j], int(ham[j]), int(ids[j])))[:k]
    return [int(ids[j]) for j in best], [int(ham[j]) for j in best], [score[j] for j in best]


@pytest.mark.parametrize("backend", ["flat", "mih", "faiss:BFlat"])
def test_two_stage_equals_brute_force_over_the_candidates(backend: str) -> None:
    pytest.importorskip("faiss") if backend.startswith("faiss") else None
    rng = np.random.default_rng(0)
    n, dim = 600, 24
    codes = rng.integers(0, 256, (n, 2), dtype=np.uint8)
    codes[100:300] = codes[100]  # a block of equal codes: Hamming ties, decided by id
    desc = rng.standard_normal((n, dim)).astype(np.float32)
    desc /= np.linalg.norm(desc, axis=1, keepdims=True)
    desc[250] = desc[120]  # equal descriptors and equal codes: the smaller id first
    ids = rng.permutation(10 * n)[:n].astype(np.int64)
    index = RerankIndex(create_index(backend, 16), dim, candidates=50)
    index.add(codes, desc, ids)
    queries = [120, 250, 5, 400, 599]
    for kp in (10, 50, 300, 1000):
        for k in (1, 7, 30):
            for radius in (None, 3):
                res = index.search(codes[queries], desc[queries], k, candidates=kp, radius=radius)
                for row, j in enumerate(queries):
                    want_ids, want_ham, want_score = brute_force(
                        codes[j], desc[j], codes, desc, ids, k, max(k, kp), radius
                    )
                    got = res.ids[row][res.ids[row] >= 0]
                    assert got.tolist() == want_ids
                    assert res.distances[row][: len(got)].tolist() == want_ham
                    np.testing.assert_allclose(res.scores[row][: len(got)], want_score, atol=1e-5)
    # an exact copy scores exactly 1 and comes first; its equal twin (larger id) second
    res = index.search(codes[[120]], desc[[120]], 2, candidates=300)
    assert res.scores[0, 0] == 1.0 and res.scores[0, 1] == 1.0
    assert res.ids[0].tolist() == sorted([int(ids[120]), int(ids[250])])


def test_removal_and_addition_keep_descriptors_in_step() -> None:
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 256, (50, 1), dtype=np.uint8)
    desc = rng.standard_normal((50, 8)).astype(np.float32)
    index = RerankIndex(create_index("flat", 8), 8)
    index.add(codes[:30], desc[:30])
    index.remove_ids([3, 4, 29])
    index.add(codes[30:], desc[30:])  # ids 30..49 (after the largest held)
    assert index.ntotal == 47 and index.index.ntotal == 47
    for j in (0, 10, 35, 49):
        res = index.search(codes[[j]], desc[[j]], 1, candidates=100)
        assert res.ids[0, 0] == j and res.scores[0, 0] == 1.0
    res = index.search(codes[[3]], desc[[3]], 47, candidates=100)
    assert not set(res.ids[0].tolist()) & {3, 4, 29}


def test_bad_descriptors() -> None:
    index = RerankIndex(create_index("flat", 8), 4)
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        index.add(np.zeros((2, 1), np.uint8), np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        index.add(np.zeros((1, 1), np.uint8), np.full((1, 4), np.nan, np.float32))
    with pytest.raises(ValueError, match="2 codes but 1 descriptors"):
        index.add(np.zeros((2, 1), np.uint8), np.zeros((1, 4), np.float32))
    index.add(np.zeros((1, 1), np.uint8), np.zeros((1, 4), np.float32))
    with pytest.raises(ValueError, match="query descriptors"):
        index.search(np.zeros((1, 1), np.uint8), np.zeros((1, 3), np.float32), 1)


def test_rerank_pads_short_rows() -> None:
    db = np.eye(3, dtype=np.float32)
    rows = np.array([[2, -1, -1]])
    res = rerank(db[[2]], db, rows, np.array([[12, -1, -1]]), np.array([[0, -1, -1]]), 3)
    assert res.ids[0].tolist() == [12, -1, -1]
    assert res.distances[0].tolist() == [0, -1, -1]
    assert res.scores[0, 0] == 1.0 and np.isnan(res.scores[0, 1:]).all()


def test_milvus_candidates_rerank_like_flat(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The same two-stage result from Milvus Lite candidates as from the exact flat scan."""
    pymilvus = pytest.importorskip("pymilvus", reason="pymilvus is not installed")
    pytest.importorskip("deephash.index.milvus")
    uri = str(tmp_path / "m.db")
    try:
        pymilvus.MilvusClient(uri).close()
    except Exception as exc:  # e.g. no milvus-lite wheel for this platform
        pytest.skip(f"Milvus Lite cannot start here: {type(exc).__name__}: {exc}")
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 256, (300, 2), dtype=np.uint8)
    desc = rng.standard_normal((300, 16)).astype(np.float32)
    flat = RerankIndex(create_index("flat", 16), 16)
    milvus = RerankIndex(create_index(f"milvus:{uri}", 16, collection="rerank"), 16)
    for index in (flat, milvus):
        index.add(codes, desc)
        index.remove_ids([7, 8])
    q = rng.integers(0, 256, (5, 2), dtype=np.uint8)
    qd = rng.standard_normal((5, 16)).astype(np.float32)
    # candidates = every item, so both see the same set (Milvus's own ties may differ)
    a = flat.search(q, qd, 10, candidates=300)
    b = milvus.search(q, qd, 10, candidates=300)
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.distances, b.distances)
