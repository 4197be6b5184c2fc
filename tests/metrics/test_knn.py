import numpy as np
import pytest

from deephash.metrics import knn_accuracy
from deephash.metrics._ranking import majority_vote


@pytest.mark.parametrize("bits", [8, 12, 48, 64, 100, 256])
def test_knn_hamming_matches_brute_force(bits, ref, data) -> None:
    q, ql, db, dl = data.tie_heavy_codes(bits, 20, 60, seed=bits)
    for k in (1, 2, 4, 7, 60, 100):
        assert knn_accuracy(q, ql, db, dl, k=k) == pytest.approx(
            ref.knn_accuracy(q, ql, db, dl, "hamming", k), abs=1e-12
        )


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_knn_float_matches_brute_force(distance, ref, data, float_blocks) -> None:
    make = data.grid_embeddings if distance == "euclidean" else data.gaussian_with_duplicates
    q, ql, db, dl = make(15, 50, 3, seed=3)
    for k in (1, 4, 9):
        assert knn_accuracy(q, ql, db, dl, k=k, distance=distance) == pytest.approx(
            ref.knn_accuracy(q, ql, db, dl, distance, k), abs=1e-12
        )


def test_knn_matches_sklearn_without_vote_ties() -> None:
    neighbors = pytest.importorskip("sklearn.neighbors")
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((3, 5)) * 3
    dl = rng.integers(0, 3, 200)
    ql = rng.integers(0, 3, 40)
    db = centres[dl] + rng.standard_normal((200, 5))
    q = centres[ql] + rng.standard_normal((40, 5))
    # k = 5 with 3 classes can tie 2-2-1; sklearn then picks the smaller label, so compare only
    # on queries without a vote tie
    clf = neighbors.KNeighborsClassifier(n_neighbors=5, algorithm="brute").fit(db, dl)
    _, idx = clf.kneighbors(q)
    no_tie = np.array([sorted(np.bincount(dl[i], minlength=3))[-2] < 2 for i in idx])
    assert no_tie.sum() > 20
    ours = [
        knn_accuracy(q[i : i + 1], ql[i : i + 1], db, dl, k=5, distance="euclidean")
        for i in range(40)
    ]
    theirs = clf.predict(q) == ql
    np.testing.assert_array_equal(np.array(ours)[no_tie], theirs[no_tie])


def test_vote_tie_goes_to_nearest_neighbour_class() -> None:
    q = np.array([[0]], dtype=np.uint8)
    # distances 1, 1, 2, 2: labels [9, 4, 4, 9] -> 2 votes each; nearest is 9
    db = np.array([[0b01], [0b10], [0b11], [0b101]], dtype=np.uint8)
    assert knn_accuracy(q, [9], db, [9, 4, 4, 9], k=4) == 1.0
    assert knn_accuracy(q, [4], db, [9, 4, 4, 9], k=4) == 0.0
    # a clear majority beats the nearest neighbour
    assert knn_accuracy(q, [4], db, [9, 4, 4, 7], k=4) == 1.0
    np.testing.assert_array_equal(
        majority_vote(np.array([[3, 1, 1, 3], [2, 5, 7, 5], [8, 8, 8, 8], [6, 0, 1, 2]])),
        [3, 5, 8, 6],
    )


def test_knn_rejects_multilabel_and_bad_k(data) -> None:
    q, _, db, _ = data.tie_heavy_codes(8, 3, 5, seed=0)
    with pytest.raises(ValueError, match="single-label"):
        knn_accuracy(q, np.ones((3, 2)), db, np.ones((5, 2)), k=3)
    with pytest.raises(ValueError, match="positive integer"):
        knn_accuracy(q, [0, 0, 0], db, [0] * 5, k=0)
