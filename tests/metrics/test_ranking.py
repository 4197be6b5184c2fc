import numpy as np
import pytest

from deephash.metrics._float_kernel import rank_row
from deephash.metrics._inputs import prepare
from deephash.metrics._ranking import compute_rank_stats, majority_vote


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rank_row_is_a_stable_argsort(dtype) -> None:
    rng = np.random.default_rng(0)
    rows = [
        rng.integers(-3, 4, 5000).astype(dtype),  # long runs of ties
        np.ones(300, dtype=dtype),  # one run: every digit is skipped
        np.arange(700, dtype=dtype)[::-1].copy(),  # no ties, reversed
        # every magnitude and both signs, with infinities and subnormals
        rng.standard_normal(4000).astype(dtype) * 10.0 ** rng.integers(-30, 30, 4000),
        np.array([np.inf, -np.inf, np.finfo(dtype).tiny / 4, -np.finfo(dtype).max, 0.0], dtype),
    ]
    for row in rows:
        np.testing.assert_array_equal(rank_row(row), np.argsort(row, kind="stable"))
    signed_zero = np.array([0.0, -0.0, 1.0, -0.0, 0.0, -1.0], dtype=dtype)
    np.testing.assert_array_equal(rank_row(signed_zero), [5, 0, 1, 3, 4, 2])


def test_majority_vote_by_loop() -> None:
    rng = np.random.default_rng(1)
    lab = rng.integers(0, 4, size=(200, 6))
    want = []
    for row in lab:
        counts = {c: int(np.sum(row == c)) for c in row}
        best = max(counts.values())
        want.append(next(c for c in row if counts[c] == best))
    np.testing.assert_array_equal(majority_vote(lab), want)


def test_rank_stats_hamming_and_float_agree_on_equivalent_inputs(ref) -> None:
    # ±1 codes: squared Euclidean distance = 4 * Hamming distance, so both paths rank alike.
    rng = np.random.default_rng(2)
    pm_q = rng.choice([-1.0, 1.0], size=(9, 16))
    pm_db = rng.choice([-1.0, 1.0], size=(40, 16))
    pm_db[20:] = pm_db[:20]  # duplicates: exact ties
    ql, dl = rng.integers(0, 3, 9), rng.integers(0, 3, 40)
    packed_q = np.packbits(pm_q > 0, axis=1, bitorder="little")
    packed_db = np.packbits(pm_db > 0, axis=1, bitorder="little")
    h = compute_rank_stats(
        prepare(packed_q, ql, packed_db, dl, "hamming"), ap_ks=[5, 40], cutoffs=[3, 9], knn_k=4
    )
    f = compute_rank_stats(
        prepare(pm_q, ql, pm_db, dl, "euclidean"), ap_ks=[40, 5], cutoffs=[9, 3], knn_k=4
    )
    for name in ("ap_ks", "ap_hits", "n_relevant", "cutoffs", "cut_hits", "knn_pred"):
        np.testing.assert_array_equal(getattr(h, name), getattr(f, name))
    np.testing.assert_allclose(h.ap_sum, f.ap_sum, rtol=1e-12)
    _, rels = ref.ranked_relevance(packed_q, ql, packed_db, dl, "hamming")
    np.testing.assert_array_equal(h.n_relevant, [sum(r) for r in rels])
    np.testing.assert_array_equal(h.cut_hits[:, 0], [sum(r[:3]) for r in rels])
