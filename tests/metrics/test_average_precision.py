import numpy as np
import pytest
import torch

from deephash.codes import pack_bits
from deephash.metrics import mean_average_precision, retrieval_report

BITS = [8, 12, 48, 64, 100, 256]


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("divisor", ["retrieved", "min_r_k"])
def test_hamming_map_matches_brute_force_with_ties(bits, divisor, ref, data) -> None:
    q, ql, db, dl = data.tie_heavy_codes(bits, 12, 90, seed=bits)
    for k in (None, 1, 7, 40, 90):
        got = mean_average_precision(q, ql, db, dl, k=k, ap_divisor=divisor)
        assert got == pytest.approx(ref.mean_ap(q, ql, db, dl, "hamming", k, divisor), abs=1e-12)


@pytest.mark.parametrize("bits", [12, 48, 100])
def test_hamming_map_matches_brute_force_spread_distances(bits, ref, data) -> None:
    q, ql, db, dl = data.noisy_codes(bits, 15, 120, seed=3)
    for k in (None, 10):
        got = mean_average_precision(q, ql, db, dl, k=k)
        assert got == pytest.approx(ref.mean_ap(q, ql, db, dl, "hamming", k), abs=1e-12)


def test_divisors_differ_on_map_at_k_and_agree_at_all(data) -> None:
    q, ql, db, dl = data.noisy_codes(16, 20, 200, seed=5)
    a = mean_average_precision(q, ql, db, dl, k=5, ap_divisor="retrieved")
    b = mean_average_precision(q, ql, db, dl, k=5, ap_divisor="min_r_k")
    assert b < a  # min(R, k) >= hits in top k, strictly for some query here
    full = [mean_average_precision(q, ql, db, dl, ap_divisor=d) for d in ("retrieved", "min_r_k")]
    assert full[0] == pytest.approx(full[1], abs=1e-15)


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_float_map_matches_brute_force_with_ties(distance, ref, data, float_blocks) -> None:
    make = data.grid_embeddings if distance == "euclidean" else data.gaussian_with_duplicates
    q, ql, db, dl = make(10, 80, 3, seed=1)
    for k in (None, 5, 200):
        for divisor in ("retrieved", "min_r_k"):
            got = mean_average_precision(q, ql, db, dl, k=k, distance=distance, ap_divisor=divisor)
            want = ref.mean_ap(q, ql, db, dl, distance, k, divisor)
            assert got == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_float_map_all_equals_sklearn_average_precision(distance) -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(7)
    q = rng.standard_normal((25, 8))
    db = rng.standard_normal((150, 8))
    ql = rng.integers(0, 5, 25)
    dl = rng.integers(0, 5, 150)
    if distance == "euclidean":
        dist = np.sqrt(((q[:, None, :] - db[None, :, :]) ** 2).sum(-1))
    else:
        qn = q / np.linalg.norm(q, axis=1, keepdims=True)
        dn = db / np.linalg.norm(db, axis=1, keepdims=True)
        dist = 1 - qn @ dn.T
    want = np.mean([metrics.average_precision_score(dl == ql[i], -dist[i]) for i in range(25)])
    got = mean_average_precision(q, ql, db, dl, distance=distance)
    assert got == pytest.approx(want, abs=1e-12)


def test_hand_computed_example() -> None:
    # distances to the query 0b0000: 0, 1, 1, 2, 4 -> ranking [0, 1, 2, 3, 4] (ties by order)
    q = np.array([[0]], dtype=np.uint8)
    db = np.array([[0b0000], [0b0001], [0b0010], [0b0011], [0b1111]], dtype=np.uint8)
    dl = np.array([1, 0, 1, 0, 1])
    # relevant at positions 1, 3, 5: AP = (1/1 + 2/3 + 3/5) / 3
    assert mean_average_precision(q, [1], db, dl) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    # AP@3: relevant within top 3 at positions 1, 3 -> (1 + 2/3) / 2, or / min(R=3, 3) = 3
    assert mean_average_precision(q, [1], db, dl, k=3) == pytest.approx((1 + 2 / 3) / 2)
    assert mean_average_precision(q, [1], db, dl, k=3, ap_divisor="min_r_k") == pytest.approx(
        (1 + 2 / 3) / 3
    )
    # Ties go by database order: swapping items 1 and 2 changes the ranking.
    db2 = db[[0, 2, 1, 3, 4]]
    dl2 = dl[[0, 2, 1, 3, 4]]
    assert mean_average_precision(q, [1], db2, dl2) == pytest.approx((1 + 1 + 3 / 5) / 3)


def test_queries_without_relevant_items_count_as_zero() -> None:
    db = pack_bits(np.array([[1, -1, 1, -1, 1, -1, 1, -1]] * 4))
    q = db[:2]
    # query 0 has label 5 (relevant: all 4 -> AP 1); query 1 has label 9 (none -> AP 0)
    got = mean_average_precision(q, [5, 9], db, [5, 5, 5, 5])
    assert got == pytest.approx(0.5)


def test_single_query_and_k_larger_than_database(ref, data) -> None:
    q, ql, db, dl = data.tie_heavy_codes(48, 1, 30, seed=11)
    got = mean_average_precision(q, ql, db, dl, k=10_000)
    assert got == pytest.approx(ref.mean_ap(q, ql, db, dl, "hamming", None), abs=1e-12)
    assert got == pytest.approx(mean_average_precision(q, ql, db, dl), abs=0)


def test_multilabel_relevance_matches_brute_force(ref, data) -> None:
    rng = np.random.default_rng(2)
    q, _, db, _ = data.tie_heavy_codes(24, 10, 70, seed=2)
    ql = (rng.random((10, 8)) < 0.3).astype(np.int64)
    dl = (rng.random((70, 8)) < 0.3).astype(np.int64)
    for k in (None, 9):
        got = mean_average_precision(q, ql, db, dl, k=k)
        assert got == pytest.approx(ref.mean_ap(q, ql, db, dl, "hamming", k), abs=1e-12)
    # >64 classes use several mask words
    ql = rng.random((10, 130)) < 0.02
    dl = rng.random((70, 130)) < 0.02
    got = mean_average_precision(q, ql, db, dl)
    assert got == pytest.approx(ref.mean_ap(q, ql, db, dl, "hamming", None), abs=1e-12)


def test_multilabel_float(ref, data, float_blocks) -> None:
    rng = np.random.default_rng(4)
    q, _, db, _ = data.grid_embeddings(8, 50, 3, seed=4)
    ql = rng.random((8, 70)) < 0.05
    dl = rng.random((50, 70)) < 0.05
    got = mean_average_precision(q, ql, db, dl, distance="euclidean", k=20)
    assert got == pytest.approx(ref.mean_ap(q, ql, db, dl, "euclidean", 20), abs=1e-12)


def test_torch_inputs_and_label_values_are_remapped(data) -> None:
    q, ql, db, dl = data.noisy_codes(32, 10, 60, seed=8)
    base = mean_average_precision(q, ql, db, dl)
    # a bijective relabelling (any integer values) changes nothing
    mapping = {-7: 10**12, 3: -(10**9), 42: 0, 1000: 5}
    ql2 = np.array([mapping[v] for v in ql])
    dl2 = np.array([mapping[v] for v in dl])
    assert mean_average_precision(q, ql2, db, dl2) == base
    got = mean_average_precision(
        torch.from_numpy(q), torch.from_numpy(ql2), torch.from_numpy(db), torch.from_numpy(dl2)
    )
    assert got == base


def test_hamming_chunking_does_not_change_results(monkeypatch, data) -> None:
    from deephash.metrics import _ranking

    q, ql, db, dl = data.noisy_codes(48, 37, 50, seed=9)
    want = mean_average_precision(q, ql, db, dl, k=13)
    monkeypatch.setattr(_ranking, "HAMMING_QUERY_CHUNK", 5)
    assert mean_average_precision(q, ql, db, dl, k=13) == want


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_blocking_does_not_change_results(distance, dtype, monkeypatch, data) -> None:
    from deephash.metrics import _ranking

    q, ql, db, dl = data.gaussian_with_duplicates(37, 600, 5, seed=9)
    q, db = q.astype(dtype), db.astype(dtype)
    want = retrieval_report(q, ql, db, dl, distance=distance, map_k=13, knn_k=7).to_dict()
    for qblock, tile in [(1, 1), (5, 7), (37, 64), (64, 600), (3, 1000)]:
        monkeypatch.setattr(_ranking, "FLOAT_QUERY_BLOCK", qblock)
        monkeypatch.setattr(_ranking, "FLOAT_DB_BLOCK", tile)
        got = retrieval_report(q, ql, db, dl, distance=distance, map_k=13, knn_k=7).to_dict()
        assert got == want, (qblock, tile)


def test_cosine_with_zero_vectors_ranks_them_at_similarity_zero(ref, float_blocks) -> None:
    q = np.array([[1.0, 0.0], [0.0, 0.0]])
    db = np.array([[0.0, 0.0], [-1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [0.0, 2.0]])
    ql, dl = [0, 1], [1, 0, 0, 1, 1]
    for k in (None, 2):
        got = mean_average_precision(q, ql, db, dl, k=k, distance="cosine")
        assert got == pytest.approx(ref.mean_ap(q, ql, db, dl, "cosine", k), abs=1e-12)
