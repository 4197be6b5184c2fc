import numpy as np
import pytest

from deephash.metrics import precision_at_k, precision_within_radius

BITS = [8, 12, 48, 64, 100, 256]


@pytest.mark.parametrize("bits", BITS)
def test_precision_at_k_hamming_matches_brute_force(bits, ref, data) -> None:
    q, ql, db, dl = data.tie_heavy_codes(bits, 10, 80, seed=bits + 1)
    for k in (1, 3, 17, 80, 500):
        got = precision_at_k(q, ql, db, dl, k=k)
        assert got == pytest.approx(ref.precision_at_k(q, ql, db, dl, "hamming", k), abs=1e-12)


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_precision_at_k_float_matches_brute_force(distance, ref, data, float_blocks) -> None:
    make = data.grid_embeddings if distance == "euclidean" else data.gaussian_with_duplicates
    q, ql, db, dl = make(9, 60, 3, seed=2)
    for k in (1, 6, 60, 61):
        got = precision_at_k(q, ql, db, dl, k=k, distance=distance)
        assert got == pytest.approx(ref.precision_at_k(q, ql, db, dl, distance, k), abs=1e-12)


def test_precision_at_k_ties_follow_database_order() -> None:
    q = np.array([[0]], dtype=np.uint8)
    db = np.array([[1], [2], [4]], dtype=np.uint8)  # all at distance 1
    assert precision_at_k(q, [0], db, [0, 1, 1], k=1) == 1.0
    assert precision_at_k(q, [0], db, [1, 0, 1], k=1) == 0.0
    assert precision_at_k(q, [0], db, [1, 0, 1], k=2) == 0.5


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("no_retrieval", ["zero", "exclude"])
def test_precision_within_radius_matches_brute_force(bits, no_retrieval, ref, data) -> None:
    q, ql, db, dl = data.noisy_codes(bits, 12, 70, seed=bits)
    # some radii leave queries with an empty ball, the largest catches everything
    for radius in (0, 2, bits // 4, bits // 3, bits):
        got = precision_within_radius(q, ql, db, dl, radius=radius, no_retrieval=no_retrieval)
        want, _ = ref.radius_precision_recall(q, ql, db, dl, radius, no_retrieval)
        assert got == pytest.approx(want, abs=1e-12)


def test_precision_within_radius_hand_example() -> None:
    q = np.array([[0b0000], [0b1111]], dtype=np.uint8)
    db = np.array([[0b0001], [0b0011], [0b0111]], dtype=np.uint8)
    # query 0: distances 1, 2, 3 -> within 2: items 0, 1 -> labels [0, 1] vs 0 -> 1/2
    # query 1: distances 3, 2, 1 -> within 2: items 1, 2 -> labels [1, 1] vs 1 -> 1
    assert precision_within_radius(q, [0, 1], db, [0, 1, 1]) == pytest.approx(0.75)
    # radius 0: nobody retrieves anything -> 0 (DeepHash convention), or 0 with nothing to average
    assert precision_within_radius(q, [0, 1], db, [0, 1, 1], radius=0) == 0.0
    assert precision_within_radius(q, [0, 1], db, [0, 1, 1], radius=0, no_retrieval="exclude") == 0
    # radius 1: query 0 gets item 0 (relevant), query 1 item 2 (relevant)
    assert precision_within_radius(q, [0, 1], db, [0, 1, 1], radius=1) == 1.0
    # exclude vs zero when only one query has a non-empty ball
    q2 = np.array([[0b0000], [0b11110000]], dtype=np.uint8)
    assert precision_within_radius(q2, [0, 1], db, [0, 1, 1], radius=1) == 0.5
    got = precision_within_radius(q2, [0, 1], db, [0, 1, 1], radius=1, no_retrieval="exclude")
    assert got == 1.0


def test_precision_within_radius_needs_codes(data) -> None:
    q, ql, db, dl = data.grid_embeddings(3, 5, 2, seed=0)
    with pytest.raises(ValueError, match="uint8"):
        precision_within_radius(q, ql, db, dl)
    with pytest.raises(ValueError, match="non-negative"):
        precision_within_radius(db.astype(np.uint8), dl, db.astype(np.uint8), dl, radius=-1)
