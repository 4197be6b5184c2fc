import numpy as np
import pytest

from deephash.metrics import (
    knn_accuracy,
    map_at_r,
    mean_average_precision,
    precision_at_k,
    precision_within_radius,
    r_precision,
    retrieval_report,
)


@pytest.mark.parametrize("divisor", ["retrieved", "min_r_k"])
def test_report_on_codes_equals_separate_metrics_and_brute_force(divisor, ref, data) -> None:
    q, ql, db, dl = data.tie_heavy_codes(48, 14, 70, seed=1)
    rep = retrieval_report(
        q, ql, db, dl, map_k=9, precision_k=5, radius=3, knn_k=3, ap_divisor=divisor
    )
    assert rep.map_all == pytest.approx(ref.mean_ap(q, ql, db, dl, "hamming", None), abs=1e-12)
    assert rep.map_at_k == pytest.approx(
        ref.mean_ap(q, ql, db, dl, "hamming", 9, divisor), abs=1e-12
    )
    assert rep.precision_at_k == pytest.approx(ref.precision_at_k(q, ql, db, dl, "hamming", 5))
    want_p, _ = ref.radius_precision_recall(q, ql, db, dl, 3)
    assert rep.precision_hamming == pytest.approx(want_p, abs=1e-12)
    assert rep.knn_accuracy == pytest.approx(ref.knn_accuracy(q, ql, db, dl, "hamming", 3))
    assert rep.map_at_k == mean_average_precision(q, ql, db, dl, k=9, ap_divisor=divisor)
    assert rep.precision_at_k == precision_at_k(q, ql, db, dl, k=5)
    assert rep.precision_hamming == precision_within_radius(q, ql, db, dl, radius=3)
    assert rep.knn_accuracy == knn_accuracy(q, ql, db, dl, k=3)
    d = rep.to_dict()
    assert d["map"] == rep.map_all and d["precision_hamming3"] == rep.precision_hamming
    assert d["map_k"] == 9 and d["precision_k"] == 5 and d["knn_k"] == 3
    assert d["num_queries"] == 14 and d["num_database"] == 70 and d["distance"] == "hamming"


def test_report_on_embeddings_has_no_hamming_precision(ref, data) -> None:
    q, ql, db, dl = data.grid_embeddings(10, 40, 3, seed=2)
    rep = retrieval_report(q, ql, db, dl, distance="euclidean", map_k=1000, precision_k=100)
    assert rep.precision_hamming is None
    # depths beyond the database are clipped: mAP@1000 == mAP@all, P@100 == P@40
    assert rep.map_at_k == pytest.approx(rep.map_all, abs=1e-15)
    assert rep.precision_at_k == pytest.approx(ref.precision_at_k(q, ql, db, dl, "euclidean", 40))
    d = rep.to_dict()
    assert "precision_hamming2" not in d and "hamming_radius" not in d
    assert {"map", "map_at_k", "precision_at_k", "knn_accuracy"} <= set(d)


def test_report_multilabel_skips_knn(data) -> None:
    rng = np.random.default_rng(3)
    q, _, db, _ = data.tie_heavy_codes(16, 6, 30, seed=3)
    ql = rng.random((6, 5)) < 0.4
    dl = rng.random((30, 5)) < 0.4
    rep = retrieval_report(q, ql, db, dl)
    assert rep.knn_accuracy is None and "knn_accuracy" not in rep.to_dict()
    assert rep.map_all == pytest.approx(mean_average_precision(q, ql, db, dl))
    assert "precision_hamming2" in rep.to_dict()


def test_report_argument_checks(data) -> None:
    q, ql, db, dl = data.tie_heavy_codes(16, 2, 5, seed=0)
    with pytest.raises(ValueError, match="map_k"):
        retrieval_report(q, ql, db, dl, map_k=0)
    with pytest.raises(ValueError, match="ap_divisor"):
        retrieval_report(q, ql, db, dl, ap_divisor="R")
    with pytest.raises(ValueError, match="radius"):
        retrieval_report(q, ql, db, dl, radius=-2)


@pytest.mark.parametrize("distance", ["hamming", "euclidean", "cosine"])
def test_report_new_metrics_equal_separate_functions(distance, ref, data, float_blocks) -> None:
    if distance == "hamming":
        q, ql, db, dl = data.tie_heavy_codes(24, 11, 60, seed=6)
    elif distance == "euclidean":
        q, ql, db, dl = data.grid_embeddings(11, 60, 3, seed=6)
    else:
        q, ql, db, dl = data.gaussian_with_duplicates(11, 60, 3, seed=6)
    rep = retrieval_report(q, ql, db, dl, distance=distance)
    assert rep.map_at_r == map_at_r(q, ql, db, dl, distance=distance)
    assert rep.r_precision == r_precision(q, ql, db, dl, distance=distance)
    assert rep.precision_at_1 == precision_at_k(q, ql, db, dl, k=1, distance=distance)
    assert rep.map_at_r == pytest.approx(ref.map_at_r(q, ql, db, dl, distance), abs=1e-12)
    assert rep.precision_at_1 == pytest.approx(ref.precision_at_k(q, ql, db, dl, distance, 1))
    d = rep.to_dict()
    assert (d["map_at_r"], d["r_precision"], d["precision_at_1"]) == (
        rep.map_at_r,
        rep.r_precision,
        rep.precision_at_1,
    )
    assert d["leave_one_out"] is False


@pytest.mark.parametrize("distance", ["hamming", "euclidean", "cosine"])
def test_report_leave_one_out_matches_brute_force(distance, ref, data, float_blocks) -> None:
    """leave_one_out: every item queries the other n - 1; every metric of the report, and each
    separate function, equals the brute force on rankings without the query."""
    if distance == "hamming":
        _, _, x, y = data.tie_heavy_codes(24, 1, 40, seed=8)
    elif distance == "euclidean":
        _, _, x, y = data.grid_embeddings(1, 40, 3, seed=8)
    else:
        _, _, x, y = data.gaussian_with_duplicates(1, 40, 3, seed=8)
    kw = {"distance": distance, "leave_one_out": True}
    rep = retrieval_report(x, y, x, y, map_k=7, precision_k=50, knn_k=3, radius=4, **kw)
    assert rep.map_all == pytest.approx(ref.mean_ap(x, y, x, y, distance, None, "retrieved", True))
    assert rep.map_at_k == pytest.approx(ref.mean_ap(x, y, x, y, distance, 7, "retrieved", True))
    # P@50 clips to the 39 other items
    assert rep.precision_at_k == pytest.approx(ref.precision_at_k(x, y, x, y, distance, 39, True))
    assert rep.precision_at_1 == pytest.approx(ref.precision_at_k(x, y, x, y, distance, 1, True))
    assert rep.map_at_r == pytest.approx(ref.map_at_r(x, y, x, y, distance, True), abs=1e-12)
    assert rep.r_precision == pytest.approx(ref.r_precision(x, y, x, y, distance, True))
    assert rep.knn_accuracy == pytest.approx(ref.knn_accuracy(x, y, x, y, distance, 3, True))
    assert rep.map_at_k == mean_average_precision(x, y, x, y, k=7, **kw)
    assert rep.precision_at_k == precision_at_k(x, y, x, y, k=50, **kw)
    assert rep.knn_accuracy == knn_accuracy(x, y, x, y, k=3, **kw)
    if distance == "hamming":
        want_p, _ = ref.radius_precision_recall(x, y, x, y, 4, leave_one_out=True)
        assert rep.precision_hamming == pytest.approx(want_p, abs=1e-12)
        assert rep.precision_hamming == precision_within_radius(
            x, y, x, y, radius=4, leave_one_out=True
        )
    d = rep.to_dict()
    assert d["leave_one_out"] is True and d["num_database"] == 40
    # the query itself does count without leave-one-out
    full = retrieval_report(x, y, x, y, distance=distance)
    assert full.map_at_r == pytest.approx(ref.map_at_r(x, y, x, y, distance), abs=1e-12)
    assert full.map_at_r != rep.map_at_r
