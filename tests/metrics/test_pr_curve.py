import numpy as np
import pytest

from deephash.metrics import (
    PrecisionRecallCurve,
    precision_at_k,
    precision_recall_curve,
    precision_within_radius,
)


@pytest.mark.parametrize("bits", [8, 12, 48, 64, 100, 256])
@pytest.mark.parametrize("no_retrieval", ["zero", "exclude"])
def test_radius_curve_matches_brute_force(bits, no_retrieval, ref, data) -> None:
    q, ql, db, dl = data.noisy_codes(bits, 8, 50, seed=bits)
    curve = precision_recall_curve(q, ql, db, dl, bits=bits, no_retrieval=no_retrieval)
    assert curve.kind == "radius"
    np.testing.assert_array_equal(curve.thresholds, np.arange(bits + 1))
    radii = sorted({0, 1, 2, bits // 5, bits // 4, bits // 3, bits // 2, bits})
    for r in radii:
        want_p, want_r = ref.radius_precision_recall(q, ql, db, dl, r, no_retrieval)
        assert curve.precision[r] == pytest.approx(want_p, abs=1e-12)
        assert curve.recall[r] == pytest.approx(want_r, abs=1e-12)
    assert np.all(np.diff(curve.recall) >= -1e-15)
    # At radius = bits every item is retrieved: recall 1 for queries with a relevant item.
    has_rel = np.array([np.any(dl == lab) for lab in ql])
    assert curve.recall[-1] == pytest.approx(has_rel.mean())


def test_radius_curve_agrees_with_precision_within_radius(data) -> None:
    q, ql, db, dl = data.tie_heavy_codes(48, 15, 80, seed=4)
    curve = precision_recall_curve(q, ql, db, dl)
    assert curve.thresholds[-1] == 48
    for r in (0, 2, 10):
        assert curve.precision[r] == pytest.approx(
            precision_within_radius(q, ql, db, dl, radius=r), abs=1e-15
        )


def test_bits_checks() -> None:
    codes = np.array([[0xFF, 0x0F]], dtype=np.uint8)
    assert precision_recall_curve(codes, [0], codes, [0], bits=12).thresholds.size == 13
    with pytest.raises(ValueError, match="does not match"):
        precision_recall_curve(codes, [0], codes, [0], bits=8)
    with pytest.raises(ValueError, match="padding"):
        precision_recall_curve(codes, [0], codes, [0], bits=10)


@pytest.mark.parametrize("distance", ["hamming", "euclidean", "cosine"])
def test_rank_curve_matches_brute_force(distance, ref, data, float_blocks) -> None:
    if distance == "hamming":
        q, ql, db, dl = data.tie_heavy_codes(20, 9, 40, seed=6)
    elif distance == "euclidean":
        q, ql, db, dl = data.grid_embeddings(9, 40, 3, seed=6)
    else:
        q, ql, db, dl = data.gaussian_with_duplicates(9, 40, 3, seed=6)
    curve = precision_recall_curve(q, ql, db, dl, distance=distance, cutoffs=[40, 1, 5, 99, 5])
    assert curve.kind == "rank"
    np.testing.assert_array_equal(curve.thresholds, [1, 5, 40])  # sorted, unique, clipped to n
    want_p, want_r = ref.rank_pr(q, ql, db, dl, distance, [1, 5, 40])
    np.testing.assert_allclose(curve.precision, want_p, atol=1e-12)
    np.testing.assert_allclose(curve.recall, want_r, atol=1e-12)
    assert curve.precision[1] == pytest.approx(
        precision_at_k(q, ql, db, dl, k=5, distance=distance), abs=1e-15
    )


def test_float_default_cutoffs_and_to_dict(data) -> None:
    q, ql, db, dl = data.grid_embeddings(4, 250, 2, seed=0)
    curve = precision_recall_curve(q, ql, db, dl, distance="euclidean")
    assert curve.kind == "rank"
    assert curve.thresholds[0] == 1 and curve.thresholds[-1] == 250
    assert curve.thresholds.size == 100 and np.all(np.diff(curve.thresholds) > 0)
    d = curve.to_dict()
    assert set(d) == {"kind", "thresholds", "precision", "recall"}
    assert isinstance(curve, PrecisionRecallCurve) and len(d["precision"]) == 100


def test_bad_cutoffs() -> None:
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match="positive"):
        precision_recall_curve(x, [0, 1], x, [0, 1], distance="euclidean", cutoffs=[0, 2])
    with pytest.raises(ValueError, match="integers"):
        precision_recall_curve(x, [0, 1], x, [0, 1], distance="euclidean", cutoffs=[1.5])


@pytest.mark.parametrize("distance", ["hamming", "euclidean"])
def test_leave_one_out_curves_match_brute_force(distance, ref, data, float_blocks) -> None:
    if distance == "hamming":
        _, _, x, y = data.tie_heavy_codes(20, 1, 30, seed=7)
    else:
        _, _, x, y = data.grid_embeddings(1, 30, 3, seed=7)
    # rank cut-offs clip to the 29 other items
    curve = precision_recall_curve(
        x, y, x, y, distance=distance, cutoffs=[1, 6, 30], leave_one_out=True
    )
    np.testing.assert_array_equal(curve.thresholds, [1, 6, 29])
    want_p, want_r = ref.rank_pr(x, y, x, y, distance, [1, 6, 29], leave_one_out=True)
    np.testing.assert_allclose(curve.precision, want_p, atol=1e-12)
    np.testing.assert_allclose(curve.recall, want_r, atol=1e-12)
    if distance == "hamming":
        curve = precision_recall_curve(x, y, x, y, leave_one_out=True)
        for r in (0, 3, 20):
            want = ref.radius_precision_recall(x, y, x, y, r, leave_one_out=True)
            assert (curve.precision[r], curve.recall[r]) == pytest.approx(want, abs=1e-12)
